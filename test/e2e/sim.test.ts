/**
 * The simulated pools over real sockets on loopback: round-robin, the pool's own backend checks,
 * /healthz and 502 semantics, a refused VIP after stop(), added latency.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { startPool, startPools, waitFor, type BackendReply, type PoolHealthReply, type SimPool } from '../../src/sim/index.js'

interface Got {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  ms: number
}

/** One request on a fresh connection (no keep-alive), so each request is observed on its own. */
function get(url: string, opts: { method?: string; body?: Buffer } = {}): Promise<Got> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

async function healthz(pool: SimPool): Promise<{ status: number; body: PoolHealthReply }> {
  const r = await get(`${pool.url}/healthz`)
  return { status: r.status, body: JSON.parse(r.body) as PoolHealthReply }
}

async function backendOf(pool: SimPool, path = '/'): Promise<string> {
  const r = await get(`${pool.url}${path}`)
  assert.equal(r.status, 200, r.body)
  return (JSON.parse(r.body) as BackendReply).backend
}

test('requests alternate over the backends and the body and headers name region and backend', async (t) => {
  const pool = await startPool({ region: 'eu-west', vip: '127.0.1.1', backends: 3 })
  t.after(() => pool.close())
  assert.match(pool.url, /^http:\/\/127\.0\.1\.1:\d+$/)
  const seen: string[] = []
  for (let i = 0; i < 6; i++) seen.push(await backendOf(pool, `/item/${i}`))
  assert.deepEqual(seen, ['eu-west-b1', 'eu-west-b2', 'eu-west-b3', 'eu-west-b1', 'eu-west-b2', 'eu-west-b3'])

  const r = await get(`${pool.url}/x?y=1`)
  const body = JSON.parse(r.body) as BackendReply
  assert.equal(body.region, 'eu-west')
  assert.equal(body.path, '/x')
  assert.equal(r.headers['x-sim-backend'], body.backend)
  assert.equal(r.headers['x-sim-region'], 'eu-west')
  assert.equal(r.headers['x-sim-pool'], 'eu-west')
  assert.match(body.forwardedFor ?? '', /^127\.\d+\.\d+\.\d+$/, 'X-Forwarded-For carries the client address')

  const h = await healthz(pool)
  assert.deepEqual(h, { status: 200, body: { region: 'eu-west', healthy: 3, backends: 3 } })
})

test('a request body is streamed through the proxy to the backend', async (t) => {
  const pool = await startPool({ region: 'eu-west', vip: '127.0.1.1' })
  t.after(() => pool.close())
  const r = await get(`${pool.url}/upload`, { method: 'POST', body: Buffer.alloc(300_000, 7) })
  assert.equal(r.status, 200)
  assert.equal((JSON.parse(r.body) as BackendReply).received, 300_000)
})

test('a stopped backend is skipped once the pool has probed it, and /healthz stays 200', async (t) => {
  // Probes time out at their interval (at most 1 s): with 50 ms, a loaded host took the running
  // backend out too. The stop is seen by a probe round run at once; the return by the periodic ones.
  const pool = await startPool({ region: 'us-east', vip: '127.0.2.1', backends: 2, healthIntervalMs: 1000 })
  t.after(() => pool.close())
  await pool.stopBackend(0)
  await pool.probeNow()
  await waitFor(async () => (await healthz(pool)).body.healthy === 1, { what: 'the pool to see backend 1 down', timeoutMs: 2000 })
  const seen = new Set<string>()
  for (let i = 0; i < 4; i++) seen.add(await backendOf(pool))
  assert.deepEqual([...seen], ['us-east-b2'])
  assert.deepEqual(await healthz(pool), { status: 200, body: { region: 'us-east', healthy: 1, backends: 2 } })

  await pool.startBackend(0)
  await waitFor(() => pool.healthyCount() === 2, { what: 'backend 1 back', timeoutMs: 10_000 })
  const back = new Set<string>()
  for (let i = 0; i < 4; i++) back.add(await backendOf(pool))
  assert.deepEqual([...back].sort(), ['us-east-b1', 'us-east-b2'])
})

test('with every backend stopped /healthz answers 503 and plain requests 502', async (t) => {
  const pool = await startPool({ region: 'ap-south', vip: '127.0.3.1', backends: 2, healthIntervalMs: 50 })
  t.after(() => pool.close())
  await pool.stopBackend(0)
  await pool.stopBackend(1)
  await waitFor(async () => (await healthz(pool)).status === 503, { what: '/healthz 503', timeoutMs: 2000 })
  assert.deepEqual((await healthz(pool)).body, { region: 'ap-south', healthy: 0, backends: 2 })
  const r = await get(`${pool.url}/anything`)
  assert.equal(r.status, 502)
  assert.match(r.body, /no healthy backend/)
  assert.ok(pool.stats.badGateway >= 1)
})

test('stop() closes the VIP so connects are refused; start() brings it back on the same port', async (t) => {
  const pool = await startPool({ region: 'eu-west', vip: '127.0.1.2' })
  t.after(() => pool.close())
  const port = pool.port
  assert.equal(await backendOf(pool), 'eu-west-b1')
  await pool.stop()
  await assert.rejects(get(`${pool.url}/`), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED')
  await pool.start()
  assert.equal(pool.port, port)
  assert.equal((await healthz(pool)).status, 200)
  assert.match(await backendOf(pool), /^eu-west-b[12]$/)
})

test('setLatency delays every response, /healthz included', async (t) => {
  const [pool] = await startPools([{ region: 'sa-east', vip: '127.0.4.1', latencyMs: 120 }])
  t.after(() => pool!.close())
  const h = await get(`${pool!.url}/healthz`)
  const p = await get(`${pool!.url}/`)
  t.diagnostic(`latency 120 ms: /healthz took ${h.ms.toFixed(1)} ms, / took ${p.ms.toFixed(1)} ms`)
  // A Node timer may fire up to a millisecond before its time as performance.now() counts it (the
  // loop's cached clock): 119.7 ms was seen. Without the latency these take ~1-5 ms.
  assert.ok(h.ms >= 115, `/healthz took ${h.ms}`)
  assert.ok(p.ms >= 115, `/ took ${p.ms}`)
  // Taken off again: set to 10 s, then to 0, the request is answered long before 10 s. (A bound near
  // the 1-5 ms it takes, < 100 ms, failed on a loaded host, where one request on a fresh connection
  // can take longer than that by itself.)
  pool!.setLatency(10_000)
  pool!.setLatency(0)
  const fast = await get(`${pool!.url}/healthz`)
  t.diagnostic(`latency 0: /healthz took ${fast.ms.toFixed(1)} ms`)
  assert.ok(fast.ms < 5000, `without latency /healthz took ${fast.ms} ms: the 10 s set before 0 still applied`)
})

test('startPools starts several regions on their own VIPs', async (t) => {
  const pools = await startPools([
    { region: 'r1', vip: '127.0.5.1' },
    { region: 'r2', vip: '127.0.5.2', backends: 3 },
  ])
  t.after(() => Promise.all(pools.map((p) => p.close())))
  assert.deepEqual(
    await Promise.all(pools.map(async (p) => (await healthz(p)).body)),
    [
      { region: 'r1', healthy: 2, backends: 2 },
      { region: 'r2', healthy: 3, backends: 3 },
    ],
  )
})

test('with control on, POST /_sim/fail takes the pool down, /_sim/recover brings it back, /_sim/latency delays it', async (t) => {
  const pool = await startPool({ region: 'ctl', vip: '127.0.0.1', healthIntervalMs: 50, control: true })
  t.after(() => pool.close())
  assert.equal((await get(`${pool.url}/_sim/fail`)).status, 405, 'GET is refused')
  assert.equal((await get(`${pool.url}/_sim/fail`, { method: 'POST' })).status, 200)
  await waitFor(async () => (await healthz(pool)).status === 503, { timeoutMs: 3000 })
  assert.equal((await get(`${pool.url}/_sim/recover`, { method: 'POST' })).status, 200)
  await waitFor(async () => (await healthz(pool)).status === 200, { timeoutMs: 3000 })
  assert.equal((await get(`${pool.url}/_sim/latency?ms=x`, { method: 'POST' })).status, 400)
  assert.equal((await get(`${pool.url}/_sim/latency?ms=80`, { method: 'POST' })).status, 200)
  assert.ok((await get(`${pool.url}/healthz`)).ms >= 75)
  const off = await startPool({ region: 'plain', vip: '127.0.0.1' })
  t.after(() => off.close())
  const proxied = await get(`${off.url}/_sim/fail`, { method: 'POST' })
  assert.equal((JSON.parse(proxied.body) as BackendReply).region, 'plain', 'without control the path goes to a backend')
  assert.equal((await healthz(off)).status, 200)
})
