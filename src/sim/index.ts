/**
 * sim/ — simulated L7 pools for the demo and the tests. Standalone: imports nothing of Meridian's.
 *
 * A simulated region is a real HTTP reverse proxy listening on the region's VIP (any 127.x.y.z on
 * Linux) that round-robins over 2-3 real backend servers on 127.0.0.1 (OS-chosen ports). Like an
 * HAProxy or ALB pool it probes its backends itself (GET /healthz every `healthIntervalMs`, plus a
 * passive check: a backend that fails a proxied request is out until its next good probe), skips
 * the unhealthy ones, answers 502 when none is left, and answers its own `/healthz` with
 * 200 `{ region, healthy, backends }` while at least one backend is healthy, else 503.
 * Requests and responses are streamed through; `X-Forwarded-For`, `-Proto` and `-Host` are set.
 * Also here for the tests and the bench: `waitFor` (poll a condition) and `prng` (a seeded PRNG).
 *
 * Config (PoolSpec): region, vip (default 127.0.0.1), port (default 0 = OS-chosen, kept across
 * stop/start), backends (default 2), healthIntervalMs (default 200), latencyMs (default 0).
 *
 * Controls: stopBackend(i) / startBackend(i); stop() / start() the whole region (stop closes the
 * VIP socket, so connects are refused, and cuts every open connection); setLatency(ms) delays
 * every response, /healthz included; probeNow() runs a probe round at once. Counters in `stats`
 * and `hits(path)` let tests prove what reached the wire. Emits `backend` { index, name, healthy }
 * when the pool's view of a backend changes.
 *
 * Example:
 *   const [eu, us] = await startPools([
 *     { region: 'eu-west', vip: '127.0.1.1' },
 *     { region: 'us-east', vip: '127.0.2.1', backends: 3, latencyMs: 40 },
 *   ])
 *   // curl http://127.0.1.1:<eu.port>/  ->  {"region":"eu-west","backend":"eu-west-b1",...}
 *   await eu.stopBackend(0); await eu.stop(); await eu.start(); await eu.close()
 */
export { SimBackend, type BackendReply } from './backend.js'
export { SimPool, startPool, startPools, type PoolSpec, type PoolHealthReply, type PoolStats } from './pool.js'
export { waitFor } from './wait.js'
export { prng } from './prng.js'
