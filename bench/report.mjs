#!/usr/bin/env node
/**
 * Results of `npm run bench`: the JSON files under bench/results/ and the generated part of
 * docs/benchmarks.md (between `<!-- bench:begin -->` and `<!-- bench:end -->`; the rest of that file
 * is written by hand and left alone).
 *
 *   node bench/report.mjs        regenerate the table in docs/benchmarks.md from bench/results/*.json
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROOT } from './common.mjs'

export const RESULTS_DIR = path.join(ROOT, 'bench', 'results')
export const DOCS_FILE = path.join(ROOT, 'docs', 'benchmarks.md')
const BEGIN = '<!-- bench:begin -->'
const END = '<!-- bench:end -->'

/** Writes `data` as bench/results/<prefix><ISO timestamp>.json; returns the path. */
export function saveResult(prefix, timestamp, data, dir = RESULTS_DIR) {
  mkdirSync(dir, { recursive: true })
  // ':' is not portable in file names: 2026-11-25T00-49-35.123Z.json
  const file = path.join(dir, `${prefix}${timestamp.replace(/:/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n')
  return file
}

/** Writes a `npm run bench` result as bench/results/<ISO timestamp>.json and bench/results/latest.json; returns the first path. */
export function saveResults(result, dir = RESULTS_DIR) {
  const file = saveResult('', result.timestamp, result, dir)
  writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(result, null, 2) + '\n')
  return file
}

/** Every saved run, oldest first (latest.json excluded: it repeats the newest). */
export function loadResults(dir = RESULTS_DIR) {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'latest.json')
    .sort()
    .map((f) => {
      try {
        return JSON.parse(readFileSync(path.join(dir, f), 'utf8'))
      } catch {
        return null
      }
    })
    .filter((r) => r && r.version === 1 && r.meridian)
}

const int = (n) => (n === null || n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'))
const ms = (n) => (n === null || n === undefined ? 'n/a' : `${n < 10 ? n.toFixed(3) : n.toFixed(1)} ms`)
const pct = (n) => (n === null || n === undefined ? 'n/a' : `${(n * 100).toFixed(1)}%`)
const cpuShare = (x) => (x && x.serverCpuSeconds !== null && x.serverCpuSeconds !== undefined ? `${Math.round((100 * x.serverCpuSeconds) / x.runSeconds)}%` : 'n/a')
const cache = (c) => (c && c.hitRatio !== null && c.hitRatio !== undefined ? pct(c.hitRatio) : 'n/a')

/** Whether `r` measured a 1-worker run in every round (`baselineRound` says which one is `baseline`). */
const baselinePerRound = (r) => r.baselineRound !== undefined

/** Rows of the latest-run table about workers: the pinning, CPU and queries per worker, the 1-worker run beside it. */
function workerRows(r) {
  const m = r.meridian
  const rows = []
  if (r.setup.workers > 1 && r.setup.pinning) rows.push(`| pinning | ${r.setup.pinning} |`)
  if (r.setup.workers > 1 && m.max.processes) rows.push(`| CPU per server process during the max run | ${m.max.processes.map((p) => `${p.role} ${Math.round((100 * p.cpuSeconds) / m.max.runSeconds)}%`).join(', ')} |`)
  if (m.queriesPerWorker && m.queriesPerWorker.length > 0) {
    const all = m.queriesPerWorker.reduce((s, w) => s + w.queries, 0)
    rows.push(`| queries answered per worker (whole run) | ${m.queriesPerWorker.map((w) => `worker ${w.worker}: ${pct(w.queries / all)}`).join(', ')} |`)
  }
  if (r.baseline) {
    const b = r.baseline
    // Since session 6 a 1-worker run in every round, the baseline from the median round by N/1 (and
    // the N-worker figures beside it from that round too); before, one 1-worker run per invocation.
    const same = baselinePerRound(r) ? r.rounds[r.baselineRound] : null
    const nCpuUs = same ? same.meridianCpuUsPerQuery : m.max.serverCpuUsPerQuery
    rows.push(`| 1 worker, ${same ? 'the median round by N/1' : 'same invocation'}: max queries/s | ${int(b.max.qps)} |`)
    if (b.max.serverCpuUsPerQuery && nCpuUs) rows.push(`| server CPU per query, max run: ${r.setup.workers} workers / 1 worker | ${nCpuUs} µs / ${b.max.serverCpuUsPerQuery} µs |`)
    rows.push(`| ${r.setup.workers} workers / 1 worker (measured, the load generator sharing a core) | ${pct(r.scaling)}${same ? ` (median of the rounds: ${r.rounds.map((x) => `x${x.scaling.toFixed(2)}`).join(', ')}; 1 worker measured in every round)` : ' (1 worker measured once)'} |`)
    if (r.scalingPerCpu) rows.push(`| queries per server CPU second, ${r.setup.workers} workers / 1 worker; projected on ${r.setup.workers} cores of their own | ${pct(r.scalingPerCpu.efficiency)}; x${r.scalingPerCpu.projected.toFixed(2)} |`)
    rows.push(`| 1 worker: average / p99 latency at 50% of its max | ${ms(b.half.avgMs)} / ${ms(b.half.p99Ms)} |`)
  }
  return rows
}

/** The generated Markdown: the latest run in full, then one line per saved run. */
export function renderTable(results) {
  if (results.length === 0) return '_No saved runs yet: run `npm run bench`._'
  const r = results[results.length - 1]
  const m = r.meridian
  const lines = [
    `### Latest run: ${r.timestamp} (commit ${r.git.commit}${r.git.dirty ? ', with uncommitted changes' : ''})`,
    '',
    `${r.machine.cpuModel}, ${r.machine.cpus} CPUs, Linux ${r.machine.kernel}${r.machine.meltdown ? ` (meltdown: ${r.machine.meltdown})` : ''}, Node ${r.machine.node}, dnsperf ${r.machine.dnsperf}. ` +
      `${r.setup.workers} worker(s); Meridian on CPU ${r.setup.serverCpus}, the load generator on CPU ${r.setup.clientCpus}` +
      (r.setup.sharedCpus ? ' (shared with the server)' : '') +
      (r.baseline ? `; ${baselinePerRound(r) ? 'in every round, after the N workers' : 'then, in the same invocation'}, 1 worker with Meridian on CPU ${r.baseline.serverCpus} and the load generator on CPU ${r.baseline.clientCpus}` : '') +
      (r.setup.serverNodeArgs ? `; Meridian's node ran with ${r.setup.serverNodeArgs.join(' ') || 'no flags'}` : '') +
      `; ${r.seconds} s per measured run after ${r.warmupSeconds} s of warm-up${r.warmupUntilPass ? ' (for Meridian, then until the query file had gone through once per worker)' : ''}; ` +
      (r.setup.generator === 'blast' ? 'max runs and warm-ups by blast (bench/blast.c), latency runs by dnsperf' : 'every run by dnsperf') +
      ` (dnsperf -c ${r.setup.dnsperf.clients} -q ${r.setup.dnsperf.outstanding}).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| Meridian, max queries/s | ${int(m.max.qps)} |`,
    `| raw \`dgram\` reference, max queries/s | ${int(r.reference.max.qps)} |`,
    `| Meridian / reference | ${pct(r.ratio)}${r.rounds && r.rounds.length > 1 ? ` (median of ${r.rounds.length} alternating rounds: ${r.rounds.map((x) => pct(x.ratio)).join(', ')}; the max figures are the median round's)` : ''} |`,
    ...(r.rounds && r.rounds.length > 1 ? [`| server CPU per query, each round: Meridian / reference | ${r.rounds.map((x) => `${x.meridianCpuUsPerQuery ?? 'n/a'} / ${x.referenceCpuUsPerQuery ?? 'n/a'} µs`).join('; ')} |`] : []),
    `| lost queries, max run | ${int(m.max.lost)} of ${int(m.max.sent)} |`,
    `| offered load for latency (50% of max) | ${int(m.half.offeredQps)} queries/s |`,
    `| average latency at 50% | ${ms(m.half.avgMs)} |`,
    `| p99 latency at 50% | ${ms(m.half.p99Ms)} |`,
    `| lost queries at 50% | ${int(m.half.lost)} of ${int(m.half.sent)} |`,
    `| reference at 50% of its own max: avg / p99 (the method's floor) | ${r.reference.half ? `${ms(r.reference.half.avgMs)} / ${ms(r.reference.half.p99Ms)}` : 'n/a'} |`,
    ...(r.rounds && r.rounds.length > 1 && r.rounds[0].meridianP99Ms !== undefined
      ? [`| p99 at 50% load, each round: Meridian / reference (the figures above are the median rounds) | ${r.rounds.map((x) => `${ms(x.meridianP99Ms)} / ${ms(x.referenceP99Ms)}`).join('; ')} |`]
      : []),
    `| server process CPU during the max run: Meridian / reference | ${cpuShare(m.max)} / ${cpuShare(r.reference.max)} |`,
    `| Meridian RSS at the end of the max run | ${m.rss.mb.toFixed(1)} MB (peak ${m.rss.peakMb.toFixed(1)} MB) |`,
    `| answer-cache hit ratio | ${m.cache.hitRatio === null ? m.cache.note : pct(m.cache.hitRatio)} |`,
    ...workerRows(r),
    '',
    ...(r.warnings && r.warnings.length > 0 ? ['Warnings of this run:', '', ...r.warnings.map((w) => `- ${w}`), ''] : []),
    '### Every saved run',
    '',
    '| date (UTC) | commit | workers | generator | s | Meridian q/s | 1 worker q/s (same run) | reference q/s | ratio | avg @50% | p99 @50% | lost max / 50% | RSS MB | cache hits |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const x of results) {
    lines.push(
      `| ${x.timestamp.slice(0, 16).replace('T', ' ')}${x.warnings && x.warnings.length > 0 ? ' !' : ''} | ${x.git.commit}${x.git.dirty ? '+' : ''} | ${x.setup.workers} | ${x.setup.generator ?? 'dnsperf'} | ${x.seconds} | ` +
        `${int(x.meridian.max.qps)} | ${x.baseline ? `${int(x.baseline.max.qps)} (x${x.scaling.toFixed(2)})` : ''} | ${int(x.reference.max.qps)} | ${pct(x.ratio)}${x.rounds && x.rounds.length > 1 ? ` (${x.rounds.length})` : ''}${x.setup.referenceLookup ? '' : ' *'} | ${ms(x.meridian.half.avgMs)} | ${ms(x.meridian.half.p99Ms)} | ` +
        `${int(x.meridian.max.lost)} / ${int(x.meridian.half.lost)} | ${x.meridian.rss.mb.toFixed(1)} | ${cache(x.meridian.cache)} |`,
    )
  }
  lines.push('', '`+` after a commit: the working tree had uncommitted changes. `!` after the date: the run printed warnings (see its JSON). `(3)` after a ratio: the median of 3 alternating rounds; runs without it measured one round. `*` after a ratio: the reference of that run paid a dns.lookup (a process.nextTick) on every send, which Meridian does not; such a reference answers ~9% fewer queries/s than the current one, so those ratios read ~9% high (every run before 2026-12-04; docs/benchmarks.md, session 8).')
  return lines.join('\n')
}

/** Rewrites the generated part of docs/benchmarks.md (between the markers) from the saved runs. */
export function renderDocs(dir = RESULTS_DIR, docs = DOCS_FILE) {
  const table = renderTable(loadResults(dir))
  const text = existsSync(docs) ? readFileSync(docs, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`
  const b = text.indexOf(BEGIN)
  const e = text.indexOf(END)
  if (b < 0 || e < b) throw new Error(`${docs}: the markers ${BEGIN} and ${END} are missing; add them where the table goes`)
  const out = `${text.slice(0, b + BEGIN.length)}\n<!-- generated by bench/run.mjs from bench/results/*.json; do not edit by hand -->\n\n${table}\n\n${text.slice(e)}`
  writeFileSync(docs, out)
  return docs
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(`wrote ${renderDocs()}`)
}
