/**
 * A zone removed from the set (its file deleted, then POST /v1/reload) takes its per-zone series out
 * of /metrics, in one process and with --workers 2: out of what the live workers report, out of the
 * counters kept from dead workers, and out of the report of a worker that had not seen the removal
 * yet. Added again, the zone counts from 0. The same for a service or a region deleted through the
 * admin API from a zone that stays. Real servers, real zone files, dig.
 */
import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { parseExposition } from '../helpers/metrics.js'
import { adminUrl, startServer, tempDir, TEST_GEODB, type RunningServer } from '../helpers/server.js'

const TOKEN = 'e2e-zone-metrics-token-41f0'
const KEEP = 'keep.zm.test'
const CUSTOMER = 'customer-17.zm.test'

const zoneYaml = (origin: string) => `origin: ${origin}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
  www: { A: 192.0.2.10 }
`

/** The per-zone DNS series of /metrics, as `name{labels} value`, parsed strictly. */
async function zoneSeries(url: string, zone: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`)
  assert.equal(res.status, 200)
  const out = new Map<string, number>()
  for (const f of parseExposition(await res.text()).values()) {
    for (const s of f.samples) if (s.labels.zone === zone) out.set(`${s.name}${JSON.stringify(s.labels)}`, s.value)
  }
  return out
}

/** meridian_dns_queries_total{zone, qtype="A", rcode="NOERROR"}, 0 without the series. */
async function answeredA(url: string, zone: string): Promise<number> {
  return (await zoneSeries(url, zone)).get(`meridian_dns_queries_total${JSON.stringify({ zone, qtype: 'A', rcode: 'NOERROR' })}`) ?? 0
}

async function reload(url: string): Promise<void> {
  const res = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(res.status, 200, await res.text())
}

/** Asks for www.ZONE A `n` times (each a fresh dig: a fresh source port, so either worker may answer). */
async function ask(port: number, zone: string, n: number, expect = 'NOERROR'): Promise<void> {
  for (let i = 0; i < n; i++) assert.equal((await dig('127.0.0.1', port, `www.${zone}`, 'A')).status, expect)
}

/** The pids of the DNS workers that logged they were ready, still alive. */
function liveWorkers(server: RunningServer): number[] {
  return server.logs
    .filter((l) => l.msg === 'dns worker ready')
    .map((l) => Number(l.pid))
    .filter((pid) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    })
}

/** Kills the worker `pid` with SIGKILL and resolves once its replacement is ready. */
async function killWorker(server: RunningServer, pid: number): Promise<void> {
  const before = server.logs.filter((l) => l.msg === 'dns worker ready').length
  process.kill(pid, 'SIGKILL')
  await server.waitForLog((l) => l.msg === 'dns worker ready' && server.logs.filter((x) => x.msg === 'dns worker ready').length > before, 30_000)
}

for (const workers of [1, 2]) {
  describe(`a removed zone's series with --workers ${workers}`, () => {
    let server: RunningServer
    let url: string
    let dir: Awaited<ReturnType<typeof tempDir>>
    let file: string

    before(async () => {
      dir = await tempDir('meridian-zone-metrics-')
      await writeFile(path.join(dir.dir, `${KEEP}.yaml`), zoneYaml(KEEP))
      const tokenFile = path.join(dir.dir, '.admin-token')
      await writeFile(tokenFile, TOKEN + '\n')
      server = await startServer({ zones: dir.dir, args: ['--geodb', TEST_GEODB, '--workers', String(workers), '--admin-token-file', tokenFile, '--no-watch'] })
      url = await adminUrl(server)
      file = path.join(server.zonesDir, `${CUSTOMER}.yaml`)
    })

    after(async () => {
      await server?.stop()
      await dir?.cleanup()
    })

    test('created, queried, deleted: its series leave /metrics (also after a worker dies); created again, it counts from 0', async () => {
      await ask(server.port, KEEP, 2)
      await writeFile(file, zoneYaml(CUSTOMER))
      await reload(url)
      await ask(server.port, CUSTOMER, 5)
      assert.equal(await answeredA(url, CUSTOMER), 5)
      if (workers > 1) {
        // The counts of a worker that dies are kept for the total: they too must go with the zone.
        await killWorker(server, liveWorkers(server)[0]!)
        assert.equal(await answeredA(url, CUSTOMER), 5, 'a dead worker\'s counts stay in the total')
      }

      await rm(file)
      await reload(url)
      assert.deepEqual([...(await zoneSeries(url, CUSTOMER)).keys()], [], 'no series of the removed zone')
      await ask(server.port, CUSTOMER, 1, 'REFUSED')
      assert.deepEqual([...(await zoneSeries(url, CUSTOMER)).keys()], [])
      if (workers > 1) {
        await killWorker(server, liveWorkers(server)[0]!)
        assert.deepEqual([...(await zoneSeries(url, CUSTOMER)).keys()], [], 'not back from the counts of a dead worker')
      }
      assert.equal(await answeredA(url, KEEP), 2, 'the other zone keeps its counts')

      await writeFile(file, zoneYaml(CUSTOMER))
      await reload(url)
      assert.deepEqual([...(await zoneSeries(url, CUSTOMER)).keys()], [], 'no series before its first query')
      await ask(server.port, CUSTOMER, 2)
      assert.equal(await answeredA(url, CUSTOMER), 2, 'counted from 0')
      await rm(file)
      await reload(url)
    })

    if (workers > 1) {
      test('a worker that has not seen the removal yet (stopped) does not bring the old counts back when the zone is created again', async (t) => {
        await writeFile(file, zoneYaml(CUSTOMER))
        await reload(url)
        await ask(server.port, CUSTOMER, 10)
        assert.equal(await answeredA(url, CUSTOMER), 10)
        const [victim] = liveWorkers(server)
        process.kill(victim!, 'SIGSTOP')
        t.after(() => {
          try {
            process.kill(victim!, 'SIGCONT')
          } catch {
            // gone
          }
        })
        // Both changes wait out the stopped worker's sync timeout (1 s), and then answer.
        await rm(file)
        await reload(url)
        assert.deepEqual([...(await zoneSeries(url, CUSTOMER)).keys()], [], 'gone though one worker has not applied the removal')
        await writeFile(file, zoneYaml(CUSTOMER))
        await reload(url)
        await ask(server.port, CUSTOMER, 3)
        process.kill(victim!, 'SIGCONT')
        // It applies both zone sets (queued on its channel before the scrape's request) and answers
        // the scrape from the new one. (A report made before the removal and received after it:
        // worker-restart.test.ts.)
        const counts = [await answeredA(url, CUSTOMER), await answeredA(url, CUSTOMER)]
        t.diagnostic(`after SIGCONT: ${counts.join(', ')}`)
        assert.deepEqual(counts, [3, 3], 'only the queries since the zone came back')
        await rm(file)
        await reload(url)
      })
    }

    test('a query answered BADVERS (EDNS version 1, answered before the name is looked up) is counted under the zone its question falls in', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await dig('127.0.0.1', server.port, '+edns=1', '+noednsneg', `www.${KEEP}`, 'A')).status, 'BADVERS')
      const badvers = (zone: string) => `meridian_dns_queries_total${JSON.stringify({ zone, qtype: 'A', rcode: 'BADVERS' })}`
      assert.equal((await zoneSeries(url, KEEP)).get(badvers(KEEP)), 3)
      assert.equal((await zoneSeries(url, '')).get(badvers('')), undefined, 'none under zone=""')
    })
  })
}

/**
 * A service or a region removed from a zone that stays (DELETE through the admin API) takes its
 * meridian_dns_answers_total series with it, in one process and with --workers 2 (also from the
 * counts a dead worker left); created again, it counts from 0. The zone's other series stay.
 */
const GSLB = 'gslb.zm.test'
const gslbYaml = `origin: ${GSLB}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
regions:
  one: { location: { lat: 0, lon: 0 }, vips: [192.0.2.1] }
services:
  www: { regions: [one] }
`

/** meridian_dns_answers_total of `zone` as `service region` -> count. */
async function answers(url: string, zone: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const [key, value] of await zoneSeries(url, zone)) {
    if (!key.startsWith('meridian_dns_answers_total{')) continue
    const labels = JSON.parse(key.slice('meridian_dns_answers_total'.length)) as { service: string; region: string }
    out.set(`${labels.service} ${labels.region}`, value)
  }
  return out
}

async function admin(url: string, method: string, route: string, body?: unknown): Promise<void> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${url}/v1/zones/${GSLB}/${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  assert.ok(res.ok, `${method} ${route}: ${res.status} ${await res.text()}`)
}

for (const workers of [1, 2]) {
  describe(`a removed service's and region's series with --workers ${workers}`, () => {
    let server: RunningServer
    let url: string
    let dir: Awaited<ReturnType<typeof tempDir>>

    before(async () => {
      dir = await tempDir('meridian-service-metrics-')
      await writeFile(path.join(dir.dir, `${GSLB}.yaml`), gslbYaml)
      const tokenFile = path.join(dir.dir, '.admin-token')
      await writeFile(tokenFile, TOKEN + '\n')
      server = await startServer({ zones: dir.dir, args: ['--geodb', TEST_GEODB, '--workers', String(workers), '--admin-token-file', tokenFile, '--no-watch'] })
      url = await adminUrl(server)
    })

    after(async () => {
      await server?.stop()
      await dir?.cleanup()
    })

    const ask = async (name: string, n: number, expect = 'NOERROR') => {
      for (let i = 0; i < n; i++) assert.equal((await dig('127.0.0.1', server.port, `${name}.${GSLB}`, 'A')).status, expect)
    }
    const www = `www.${GSLB} one`
    const api = `api.${GSLB} one`

    test('a service created, queried, deleted: its series leave /metrics (also after a worker dies); created again, it counts from 0', async () => {
      await ask('www', 2)
      await admin(url, 'POST', 'services', { name: 'api', regions: ['one'] })
      await ask('api', 5)
      assert.deepEqual(await answers(url, GSLB), new Map([[www, 2], [api, 5]]))
      if (workers > 1) {
        await killWorker(server, liveWorkers(server)[0]!)
        assert.deepEqual(await answers(url, GSLB), new Map([[www, 2], [api, 5]]), 'a dead worker\'s counts stay in the total')
      }

      await admin(url, 'DELETE', 'services/api')
      assert.deepEqual(await answers(url, GSLB), new Map([[www, 2]]), 'the deleted service has no series; the other keeps its own')
      await ask('api', 1, 'NXDOMAIN')
      if (workers > 1) {
        await killWorker(server, liveWorkers(server)[0]!)
        assert.deepEqual(await answers(url, GSLB), new Map([[www, 2]]), 'not back from the counts of a dead worker')
      }
      assert.equal(await answeredA(url, GSLB), 2 + 5, 'the zone\'s query series are kept')

      await admin(url, 'POST', 'services', { name: 'api', regions: ['one'] })
      assert.deepEqual(await answers(url, GSLB), new Map([[www, 2]]), 'no series before its first answer')
      await ask('api', 3)
      assert.deepEqual(await answers(url, GSLB), new Map([[www, 2], [api, 3]]), 'counted from 0')
      await admin(url, 'DELETE', 'services/api')
    })

    test('a region deleted (detached from the service answering from it): the series it answered leave /metrics', async () => {
      await admin(url, 'POST', 'regions', { name: 'two', location: { lat: 10, lon: 10 }, vips: ['192.0.2.2'] })
      await admin(url, 'POST', 'services', { name: 'api', regions: ['two', 'one'], policy: 'failover' })
      await ask('api', 4)
      assert.equal((await answers(url, GSLB)).get(`api.${GSLB} two`), 4)
      if (workers > 1) await killWorker(server, liveWorkers(server)[0]!)

      await admin(url, 'DELETE', 'regions/two?detach=true')
      assert.deepEqual(await answers(url, GSLB), new Map([[www, 2]]), 'no series of the deleted region')
      await ask('api', 1)
      assert.deepEqual(await answers(url, GSLB), new Map([[www, 2], [api, 1]]))
      await admin(url, 'DELETE', 'services/api')
    })
  })
}
