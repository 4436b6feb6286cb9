#!/usr/bin/env node
/**
 * The bench's live regions: one simulated L7 pool (Meridian's own `src/sim`, a real HTTP reverse
 * proxy over two real backends) per region, each on its loopback VIP with an OS-chosen port.
 * bench/run.mjs runs this as a child process, so the pools' work (their own backend probes and
 * Meridian's /healthz checks against them) never lands on the server's event loop.
 *
 *   node bench/pools.mjs REGION=VIP [REGION=VIP ...]      e.g. us-east=127.90.1.1
 *
 * Prints one JSON line `{"pools":[{"region","vip","port"}...]}` on stdout once every pool listens,
 * then keeps them up until SIGTERM/SIGINT or until its stdin closes (the harness went away).
 * Needs `npm run build` (it imports dist/src/sim/index.js).
 */
import { startPools } from '../dist/src/sim/index.js'

const specs = process.argv.slice(2).map((a) => {
  const [region, vip] = a.split('=')
  if (!region || !vip || !vip.startsWith('127.')) {
    console.error(`pools: expected REGION=127.x.y.z, got ${a}`)
    process.exit(2)
  }
  return { region, vip, port: 0, backends: 2, healthIntervalMs: 1000 }
})

let pools = []
try {
  pools = await startPools(specs)
} catch (err) {
  console.error(`pools: cannot start the simulated pools: ${err.message}`)
  process.exit(1)
}
process.stdout.write(JSON.stringify({ pools: pools.map((p) => ({ region: p.region, vip: p.vip, port: p.port })) }) + '\n')

let stopping = false
const stop = () => {
  if (stopping) return
  stopping = true
  const force = setTimeout(() => process.exit(0), 3000)
  force.unref()
  Promise.allSettled(pools.map((p) => p.close())).then(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()
