#!/usr/bin/env node
// Summarises a .cpuprofile written by `npm run bench -- --cpu-prof DIR`:
// self time per function (or per package with --by-package), optionally only
// the last N seconds of the profile (the steady state, without start-up), or
// a window in seconds after the profile's start (--from/--to: one case of a
// server that ran several, e.g. the list case of the 1,000,000-device server).
//   node bench/cpuprofile-top.mjs FILE [--last SECONDS | --from S --to S] [--by-package] [--top N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { last: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, 'by-package': { type: 'boolean', default: false }, top: { type: 'string', default: '30' } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node bench/cpuprofile-top.mjs FILE [--last SECONDS | --from S --to S] [--by-package] [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
let time = profile.startTime;
const from = values.last ? profile.endTime - Number(values.last) * 1e6 : values.from ? profile.startTime + Number(values.from) * 1e6 : -Infinity;
const to = values.to ? profile.startTime + Number(values.to) * 1e6 : Infinity;
const totals = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i];
  time += delta;
  if (time < from || time > to) return;
  total += delta;
  const frame = nodes.get(id).callFrame;
  let key;
  if (values['by-package']) {
    const pkg = frame.url.match(/node_modules\/((@[^/]+\/)?[^/]+)/);
    key = pkg
      ? pkg[1]
      : frame.url.includes('/src/')
        ? `src/${frame.url.split('/src/')[1]}`
        : frame.url.includes('/dist/server/') // the service as npm start runs it: all of src/ in one bundle
          ? `dist/server/${frame.url.split('/dist/server/')[1]} (src/)`
          : frame.url.startsWith('node:')
            ? frame.url
            : frame.functionName || '(native)';
  } else {
    key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
  }
  totals.set(key, (totals.get(key) ?? 0) + delta);
});
for (const [key, value] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  process.stdout.write(`${((value / total) * 100).toFixed(1).padStart(5)} %  ${key}\n`);
}
process.stdout.write(`(${(total / 1000).toFixed(0)} ms of samples)\n`);
