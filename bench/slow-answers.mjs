#!/usr/bin/env node
/**
 * Where the slow answers of a latency run lie in time: `node bench/slow-answers.mjs FILE QPS [MS]`.
 *
 * FILE is a dnsperf `-v` output (one `> NOERROR ... 0.000142` line per answer; `npm run bench --
 * --keep` keeps them as latency-50-N.txt and reference-latency-50-N.txt), QPS the rate it was
 * offered at (`-Q`, printed by the bench), MS the threshold (default 1). At a fixed rate the order
 * of the lines is the order of arrival, so line i is about i / QPS seconds into the run. Answers
 * over the threshold within 50 ms of each other make one event; the largest events are listed with
 * their time, length and worst answer. A server that stalls (a GC pause, a burst of cache misses,
 * a preempted vCPU) shows as an event of many slow answers; slow answers spread evenly do not
 * (docs/benchmarks.md, session 9).
 */
import { dnsperfLatencies, latencyStats } from './common.mjs'

const [file, rateArg, thresholdArg = '1'] = process.argv.slice(2)
const qps = Number(rateArg)
const threshold = Number(thresholdArg)
if (!file || !(qps > 0) || !(threshold > 0)) {
  console.error('usage: node bench/slow-answers.mjs DNSPERF_V_FILE OFFERED_QPS [THRESHOLD_MS]')
  process.exit(2)
}

const latencies = await dnsperfLatencies(file)
if (latencies.length === 0) {
  console.error(`${file}: no dnsperf -v answer lines`)
  process.exit(1)
}

const gap = qps * 0.05
const events = []
let slow = 0
latencies.forEach((ms, i) => {
  if (ms <= threshold) return
  slow++
  const e = events.at(-1)
  if (e && i - e.last <= gap) {
    e.last = i
    e.n++
    e.max = Math.max(e.max, ms)
  } else events.push({ first: i, last: i, n: 1, max: ms })
})

const stats = latencyStats(latencies)
const inBig = events.filter((e) => e.n >= 50).reduce((s, e) => s + e.n, 0)
console.log(`${file}: ${latencies.length} answers at ${qps} q/s; p50 ${stats.p50Ms} ms, p99 ${stats.p99Ms} ms, max ${stats.maxMs} ms`)
console.log(`  ${slow} over ${threshold} ms (${((100 * slow) / latencies.length).toFixed(2)}%) in ${events.length} events; events of 50 or more hold ${slow ? ((100 * inBig) / slow).toFixed(1) : 0}% of them`)
for (const e of [...events].sort((a, b) => b.n - a.n).slice(0, 10)) {
  console.log(`  t=${(e.first / qps).toFixed(3)} s: ${e.n} slow over ${(((e.last - e.first) / qps) * 1000).toFixed(1)} ms, worst ${e.max.toFixed(2)} ms`)
}
