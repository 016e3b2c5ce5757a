/** Every CLI command, in help order. Each module exports a factory that builds its commander Command. */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { serveCommand } from './serve.js';
import { publishCommand } from './publish.js';
import { doctorCommand } from './doctor.js';
import { swarmCommand } from './swarm.js';
import { reportCommand } from './report.js';
import { checkCommand } from './check.js';

/** `done(code)` sets the process exit code when the command's action finishes. */
export type CommandFactory = (io: Io, done: (code: number) => void) => Command;

export const COMMANDS: CommandFactory[] = [serveCommand, publishCommand, swarmCommand, reportCommand, checkCommand, doctorCommand];
