/**
 * `notify report`: show a result file's summary again, compare it against a baseline (exit 99 on a regression),
 * merge results of several shards into one, and write HTML / JUnit / Markdown from it.
 */
import { Command } from 'commander';
import { ExitCode, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { thresholdsPassed } from '../metrics/thresholds.js';
import { writeArtifacts } from '../report/artifacts.js';
import { compareSummaries, DEFAULT_REGRESSION_RULES, parseRegressionRules, renderComparison, selfCheckChange, type RegressionRule } from '../report/compare.js';
import { appendStepSummary, comparisonMarkdown, resultMarkdown } from '../report/markdown.js';
import { mergeResults, scenarioDifferences } from '../result/merge.js';
import { readResultFile } from '../result/read.js';
import type { ResultFile } from '../result/schema.js';
import { renderSummary, summaryViewOf } from '../report/summary-table.js';

export interface RawReportOptions {
  compare?: string;
  maxRegression?: string[];
  merge?: string[];
  out?: string;
  html?: string;
  junit?: string;
}

export interface ReportConfig {
  /** The result file(s): one, or several with `merge`. */
  files: string[];
  merge: boolean;
  compare?: string;
  rules: RegressionRule[];
  /** True when the rules are DEFAULT_REGRESSION_RULES (none given). */
  defaultRules: boolean;
  out?: string;
  html?: string;
  junit?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function resolveReportOptions(args: string[], raw: RawReportOptions): ReportConfig {
  const merge = raw.merge !== undefined;
  const files = [...args, ...(raw.merge ?? [])];
  if (files.length === 0) throw usageError('give a result file: notify report result.json (or --merge a.json b.json ...)');
  if (!merge && files.length > 1)
    throw usageError(
      `one result file at a time (got ${files.length}: ${files.join(', ')})`,
      'to combine results of several machines use --merge a.json b.json ...',
    );
  if (raw.maxRegression && !raw.compare) throw usageError('--max-regression needs --compare base.json');
  const given = raw.maxRegression ?? [];
  return {
    files,
    merge,
    compare: raw.compare,
    rules: parseRegressionRules(given.length ? given : DEFAULT_REGRESSION_RULES),
    defaultRules: given.length === 0,
    out: raw.out,
    html: raw.html,
    junit: raw.junit,
  };
}

export function reportCommand(io: Io, done: (code: number) => void): Command {
  return new Command('report')
    .description('Show a result file again, compare it with a baseline (exit 99 on a regression), merge shards, write HTML / JUnit.')
    .argument('[result...]', 'result file(s) written by notify swarm --out')
    .option('--compare <base.json>', 'show the change of the headline figures against this baseline result')
    .option(
      '--max-regression <rule>',
      `allowed change, e.g. p99:+10%, lost:+0, delivered_rate:-5%, connect.p99:+50ms (repeatable; default ${DEFAULT_REGRESSION_RULES.join(' ')})`,
      collect,
    )
    .option('--merge <files...>', 'merge results of the same scenario from several machines or shards (counts summed, histograms merged exactly)')
    .option('--out <file>', 'write the (merged) result as notify.result/1 JSON, or - for stdout')
    .option('--html <file>', 'write a self-contained HTML report (charts work offline)')
    .option('--junit <file>', 'write the thresholds as JUnit XML test cases')
    .addHelpText(
      'after',
      `
Examples:
  $ notify report result.json                                   # the summary tables again
  $ notify report result.json --html report.html --junit junit.xml
  $ notify report result.json --compare baseline.json           # exit 99 if p99 grew > 20%, any more lost, delivered_rate fell > 1%
  $ notify report result.json --compare baseline.json --max-regression p99:+10% --max-regression connect.p99:+50ms
  $ notify report --merge shard-1.json shard-2.json --out merged.json --html merged.html

Regression rules: <metric>:<+|-><amount>[unit]. + means the figure may grow by at most the amount, - that it may
shrink by at most the amount; % is relative to the baseline, otherwise the amount is in the metric's unit (ms for
durations, a fraction for rates, a number for counts). Metrics are the --threshold names (p99, lost, lost_rate,
delivered_rate, connect.p99, ws.p99, delivered_per_sec, ...). Without --max-regression: ${DEFAULT_REGRESSION_RULES.join(', ')}.
With GITHUB_STEP_SUMMARY set, a Markdown summary (or the comparison) is appended to that file.
Exit codes: 0 ok, 1 merged result that measured nothing (no connection opened, no probe accepted, a worker lost),
2 bad flag or unreadable result file, 99 regression (--compare) or merged result crossing its thresholds.`,
    )
    .action(async (args: string[], raw: RawReportOptions) => {
      const config = resolveReportOptions(args, raw);
      let result: ResultFile;
      let name: string;
      if (config.merge) {
        const files = [];
        for (const file of config.files) files.push({ file, result: await readResultFile(file) });
        for (const d of scenarioDifferences(files)) io.stderr.write(`warning: ${d}\n`);
        result = mergeResults(files);
        name = 'merged';
        io.stderr.write(`merged ${files.length} results: ${files.map((f) => `${f.file} (${f.result.summary.total.connections.target} conns)`).join(', ')}\n`);
      } else {
        name = config.files[0]!;
        result = await readResultFile(name);
        io.stderr.write(
          `${name}: run ${result.run}, ${result.startedAt} - ${result.endedAt}${result.stoppedEarly ? `, stopped early (${result.stoppedEarly})` : ''}\n`,
        );
      }
      io.stderr.write(renderSummary(summaryViewOf(result), io.color));
      // A merged run is judged like a run: measured nothing -> 1, thresholds crossed -> 99.
      let code: number = !config.merge
        ? ExitCode.ok
        : result.problems.length
          ? ExitCode.runtime
          : thresholdsPassed(result.thresholds)
            ? ExitCode.ok
            : ExitCode.thresholds;
      let markdown = resultMarkdown(result, config.merge ? `notify report: merged \`${result.run}\`` : undefined);
      if (config.compare) {
        const base = await readResultFile(config.compare);
        const comparison = compareSummaries(base.summary, result.summary, config.rules, [base.publisher, result.publisher]);
        io.stderr.write(`\n${name} (current) compared with ${config.compare} (base, run ${base.run})${config.defaultRules ? ', default rules' : ''}:\n`);
        io.stderr.write(renderComparison(comparison, io.color));
        const sides = selfCheckChange(base.selfCheck, result.selfCheck);
        if (sides) io.stderr.write(sides);
        markdown = comparisonMarkdown(comparison, config.compare, name, sides);
        if (comparison.regressions.length) code = ExitCode.thresholds;
      }
      await writeArtifacts(
        result,
        { out: config.out, html: config.html, junit: config.junit },
        io,
        config.merge ? `notify report: merged ${result.run}` : undefined,
      );
      const summaryFile = await appendStepSummary(io.env, markdown);
      if (summaryFile) io.stderr.write(`job summary appended to ${summaryFile}\n`);
      done(code);
    });
}
