#!/usr/bin/env node
// bench/socket-write: what one small write to a TCP socket costs the writing process, by write path. This process
// holds N server-side loopback sockets; a child process connects them and reads (discarding), so the reader's CPU is
// not counted. Each round writes one ~200 B Buffer to every socket, then waits (the gateway's broadcast pattern: each
// write finds the socket empty). Modes alternate round by round; per mode: this process's CPU-seconds (user, sys) over
// its rounds, us per write.
//   socket.write  net.Socket#write (Writable -> _writeGeneric -> writeGeneric: a WriteWrap per write)
//   direct        SocketWriter (dist/server/socket-write.js): the handle's writeBuffer, one reused request, when nothing is queued
// Usage: npm run build && node bench/socket-write.mjs [--conns 2000] [--rounds 300] [--bytes 200] [--gap 20]
//        [--modes socket.write,direct]
import { fork } from 'node:child_process';
import net from 'node:net';
import { args, median, sleep } from './lib.mjs';

if (process.argv[2] === '--reader') {
  // Child: connect and read everything, forever.
  const [port, conns] = [Number(process.argv[3]), Number(process.argv[4])];
  let open = 0;
  for (let i = 0; i < conns; i++) {
    const s = net.connect({ port, host: '127.0.0.1' }, () => {
      if (++open === conns) process.send('ready');
    });
    s.on('data', () => {});
    s.on('error', () => {});
  }
  process.on('disconnect', () => process.exit(0));
} else {
  const opt = args({ conns: 2000, rounds: 300, bytes: 200, gap: 20, modes: 'socket.write,direct', slices: 5 });
  const cmd = `node bench/socket-write.mjs --conns ${opt.conns} --rounds ${opt.rounds} --bytes ${opt.bytes} --gap ${opt.gap} --modes ${opt.modes} --slices ${opt.slices}`;
  const { directWrites, SocketWriter } = await import('../dist/server/socket-write.js');
  if (!directWrites) throw new Error('no direct write path on this Node');
  const sockets = [];
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    sockets.push(s);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const reader = fork(new URL(import.meta.url).pathname, ['--reader', String(server.address().port), String(opt.conns)]);
  await new Promise((r) => reader.once('message', r));
  while (sockets.length < opt.conns) await sleep(10);

  const writers = new Map(sockets.map((s) => [s, new SocketWriter(s)]));
  const frame = Buffer.alloc(opt.bytes, 'a');
  frame[frame.length - 1] = 10;
  const write = {
    'socket.write': (s, b) => s.write(b),
    direct: (s, b) => writers.get(s).write(b),
  };
  const modes = opt.modes.split(',');
  for (const m of modes) if (!write[m]) throw new Error(`unknown mode ${m}; known: ${Object.keys(write).join(', ')}`);
  // Warm-up: every mode's code optimised before it is measured.
  for (let r = 0; r < 20; r++) for (const m of modes) for (const s of sockets) write[m](s, frame);
  await sleep(500);

  /** Per mode and slice: [user s, sys s, writes]. Slices alternate the modes so drift on the box hits all alike. */
  const per = Object.fromEntries(modes.map((m) => [m, []]));
  const perSlice = Math.ceil(opt.rounds / opt.slices);
  for (let slice = 0; slice < opt.slices; slice++) {
    for (const m of slice % 2 ? [...modes].reverse() : modes) {
      const w = write[m];
      const c0 = process.cpuUsage();
      for (let r = 0; r < perSlice; r++) {
        for (const s of sockets) w(s, frame);
        await sleep(opt.gap);
      }
      const c = process.cpuUsage(c0);
      per[m].push([c.user / 1e6, c.system / 1e6, perSlice * sockets.length]);
    }
  }
  console.log(cmd);
  console.log(`${new Date().toISOString()}  ${opt.conns} sockets, ${opt.slices} slices x ${perSlice} rounds per mode, ${opt.bytes} B per write`);
  const base = modes[0];
  const us = (m) => median(per[m].map(([u, sy, n]) => ((u + sy) / n) * 1e6));
  for (const m of modes) {
    const u = per[m].reduce((a, x) => a + x[0], 0);
    const sy = per[m].reduce((a, x) => a + x[1], 0);
    const n = per[m].reduce((a, x) => a + x[2], 0);
    const slices = per[m].map(([a, b, k]) => (((a + b) / k) * 1e6).toFixed(2)).join(' ');
    console.log(
      `${m.padEnd(13)} user ${u.toFixed(2)} s  sys ${sy.toFixed(2)} s  ${n} writes  median ${us(m).toFixed(2)} us/write (slices: ${slices})  ${(us(m) / us(base)).toFixed(3)}x ${base}`,
    );
  }
  reader.disconnect();
  reader.kill();
  for (const s of sockets) s.destroy();
  server.close();
}
