/**
 * The GeoIP database taken again when its file is replaced, end to end: real servers (one process,
 * and two DNS workers) on a copy of the test database, asked with the real dig. London's /26 is moved
 * to Ashburn by a new database renamed over the old (as geoipupdate does), built at another time and
 * padded to the size of a real City database; SIGHUP, POST /v1/reload and the file watch each make the
 * answer and the build time reported follow, and a torn file is refused while the last good database
 * keeps answering.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { dig } from '../helpers/dig.js'
import { buildTestDb, LONDON_IN_ASHBURN, LONDON_ROW, paddingRows, replaceFile, TEST_DB_BUILT } from '../helpers/geodb.js'
import { addressesOf, ask, askMany, subnet, writeZone } from '../helpers/gslb.js'
import { adminUrl, startServer, tempDir, TEST_GEODB, type RunningServer } from '../helpers/server.js'
import { TYPE } from '../helpers/wire.js'

const ORIGIN = 'geodb-e2e.test'
const NAME = `www.${ORIGIN}`
const VIP = { eu: '127.78.1.1', us: '127.78.2.1' }
const LONDON = subnet('192.0.2.0/26')
const TOKEN = 'geodb-reload-test-token'
/** When the moved database was built (the test database's is TEST_DB_BUILT): what says which one is open. */
const MOVED_BUILT = '2025-06-01T00:00:00.000Z'
/**
 * The moved database's padding. A DNS worker takes a few hundred ms to be sent 16 MB and open them
 * (the 3 KB test database alone, well under a ms), so were POST /v1/reload's 200 sent before every
 * worker had the new database, London's answers right after it would be eu's. Measured on 2 cores
 * with that wait taken out of src/cli.ts: with 1 or 2 MB, some reloads went unseen (every answer
 * us); with 8 and 16 MB none did, the workers answering eu for 100-230 and 200-400 ms after the 200.
 */
const PADDING_BYTES = 16 * 1024 * 1024

const ZONE = `origin: ${ORIGIN}
soa: { mname: ns1, rname: hostmaster.${ORIGIN}., minimum: 60 }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
regions:
  eu: { location: { lat: 51.51, lon: -0.13 }, vips: [${VIP.eu}] }
  us: { location: { lat: 38.95, lon: -77.45 }, vips: [${VIP.us}] }
services:
  www: { regions: [eu, us], policy: geo, answers: 1, ttl: 5 }
`

let work: { dir: string; cleanup: () => Promise<void> }
/** The test database with London's /26 in Ashburn, built at MOVED_BUILT, PADDING_BYTES bigger. */
let moved: Buffer
const running: RunningServer[] = []

/** A server on a zone directory and a copy of the test database of its own. */
async function serverWith(name: string, args: string[]): Promise<{ server: RunningServer; geodb: string }> {
  const zones = path.join(work.dir, `${name}-zones`)
  const geodb = path.join(work.dir, `${name}-geodb`, 'test.mmdb')
  await Promise.all([mkdir(zones), mkdir(path.dirname(geodb))])
  await writeZone(zones, `${ORIGIN}.yaml`, ZONE)
  await writeFile(path.join(path.dirname(geodb), 'README'), 'the test database, replaced by the test\n')
  await copyFile(TEST_GEODB, geodb)
  const server = await startServer({ zonesDirInPlace: zones, args: ['--geodb', geodb, ...args] })
  running.push(server)
  return { server, geodb }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** What dig gets for London's /26. */
async function digLondon(server: RunningServer): Promise<string[]> {
  const r = await dig('127.0.0.1', server.port, NAME, 'A', `+subnet=${LONDON.address}/${LONDON.prefix}`)
  assert.equal(r.status, 'NOERROR')
  return r.answer.filter((a) => a.type === 'A').map((a) => a.data)
}

/** The build time `/metrics` reports for the database answering (meridian_geodb_build_timestamp_seconds), ISO 8601. */
async function metricsBuilt(admin: string): Promise<string> {
  const m = /^meridian_geodb_build_timestamp_seconds (\d+)$/m.exec(await (await fetch(`${admin}/metrics`)).text())
  assert.ok(m, 'no meridian_geodb_build_timestamp_seconds')
  return new Date(Number(m[1]) * 1000).toISOString()
}

/** London's answer, ten times in a row (from whichever worker the kernel picks), is `vip`. */
async function alwaysAnswered(server: RunningServer, vip: string): Promise<boolean> {
  for (let i = 0; i < 10; i++) if ((await addressesOf(await ask(server.port, NAME, TYPE.A, LONDON)))[0] !== vip) return false
  return true
}

before(async () => {
  work = await tempDir('meridian-geodb-e2e-')
  moved = await readFile(await buildTestDb(path.join(work.dir, 'moved.mmdb'), [[LONDON_ROW, LONDON_IN_ASHBURN]], { built: MOVED_BUILT, extraRows: paddingRows(PADDING_BYTES) }))
  assert.ok(moved.length > PADDING_BYTES)
})

after(async () => {
  for (const s of running) await s.stop()
  await work.cleanup()
})

test('SIGHUP takes a GeoIP database renamed over the old one: London\'s /26 is answered from us at once (one process, the file not watched)', async () => {
  const { server, geodb } = await serverWith('sighup', ['--no-watch'])
  const admin = await adminUrl(server)
  assert.deepEqual(await digLondon(server), [VIP.eu])
  assert.equal(await metricsBuilt(admin), TEST_DB_BUILT)
  await replaceFile(geodb, moved)
  // Not watched: nothing changes until asked (the cached answer stays).
  assert.deepEqual(await digLondon(server), [VIP.eu])
  assert.equal(await metricsBuilt(admin), TEST_DB_BUILT)
  server.proc.kill('SIGHUP')
  const line = await server.waitForLog((l) => l.msg === 'GeoIP database reloaded')
  assert.equal(line.why, 'SIGHUP')
  assert.equal(line.buildEpoch, MOVED_BUILT)
  assert.deepEqual(await digLondon(server), [VIP.us])
  assert.equal(await metricsBuilt(admin), MOVED_BUILT)
})

test('POST /v1/reload with two DNS workers: every worker answers from the new database; a torn file is a 409, and the last good one keeps answering', async () => {
  const tokenFile = path.join(work.dir, 'token')
  await writeFile(tokenFile, `${TOKEN}\n`)
  const { server, geodb } = await serverWith('workers', ['--no-watch', '--workers', '2', '--admin-token-file', tokenFile])
  const admin = await adminUrl(server)
  const reload = () => fetch(`${admin}/v1/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  /** A torn copy (an update job that wrote in place and died): refused, and the last good database, built at `built`, keeps answering. */
  const refused = async (built: string, vip: string) => {
    await writeFile(geodb, moved.subarray(0, 1200))
    const torn = await reload()
    assert.equal(torn.status, 409)
    const body = (await torn.json()) as { error: string; message: string }
    assert.equal(body.error, 'E_GEODB')
    const m = /^the zone files were reloaded \(generation \d+\), the GeoIP database was not: GeoIP database .* is not a valid MaxMind DB file .*; the last good database \(built (.*)\) keeps answering$/.exec(body.message)
    assert.ok(m, body.message)
    assert.equal(m[1], built)
    assert.ok(await alwaysAnswered(server, vip))
    assert.equal(await metricsBuilt(admin), built)
  }
  assert.ok(await alwaysAnswered(server, VIP.eu))
  const same = await reload()
  assert.equal(same.status, 200)
  assert.deepEqual(((await same.json()) as { geodb: unknown }).geodb, { path: geodb, changed: false, buildEpoch: TEST_DB_BUILT })
  assert.equal(await metricsBuilt(admin), TEST_DB_BUILT)
  await refused(TEST_DB_BUILT, VIP.eu)

  await replaceFile(geodb, moved)
  const res = await reload()
  assert.equal(res.status, 200)
  assert.deepEqual(((await res.json()) as { geodb: unknown }).geodb, { path: geodb, changed: true, buildEpoch: MOVED_BUILT })
  // The 200 comes once every worker answers from the new database: London asked at once, 200 times,
  // 64 in flight (the kernel hands each datagram to whichever worker reads first), each answer from
  // us. Were the 200 sent before the workers had the 16 MB, the first answers would be eu's.
  const replies = await askMany(server.port, Array.from({ length: 200 }, () => ({ name: NAME, type: TYPE.A, client: LONDON })))
  const fromEu = replies.filter((r) => addressesOf(r)[0] !== VIP.us).length
  assert.equal(fromEu, 0, `${fromEu} of the 200 answers right after the 200 were not the new database's`)
  assert.deepEqual(await digLondon(server), [VIP.us])
  assert.equal(await metricsBuilt(admin), MOVED_BUILT)

  await refused(MOVED_BUILT, VIP.us)
  // Workers started while the torn file is on disk answer from the database the control process
  // kept, not from the file: both killed in turn, and replaced.
  for (let round = 0; round < 2; round++) {
    const ready = server.logs.filter((l) => l.msg === 'dns worker ready').map((l) => Number(l.pid))
    const victim = ready.find((pid) => !server.logs.some((l) => l.msg === 'dns worker stopped' && l.pid === pid) && alive(pid))!
    const fresh = server.waitForLog((l) => l.msg === 'dns worker ready' && !ready.includes(Number(l.pid)))
    process.kill(victim, 'SIGKILL')
    await fresh
  }
  assert.ok(await alwaysAnswered(server, VIP.us), 'replacement workers answer from the last good database')
  const metrics = await (await fetch(`${admin}/metrics`)).text()
  assert.match(metrics, /^meridian_geodb_reloads_total\{result="ok"\} 1$/m)
  assert.match(metrics, /^meridian_geodb_reloads_total\{result="error"\} 2$/m)
  assert.match(metrics, /^meridian_geodb_build_timestamp_seconds 1748736000$/m)
})

test('with two DNS workers, a zone change made while a new database is still reaching them is acknowledged only once they answer from that database', async () => {
  // The database goes to each worker in pieces, so that health and zone messages are not queued
  // behind all of it; a worker's acknowledgement of such a message must then not claim the database
  // it is still receiving. The admin API's 200 for the change waits for the acknowledgements.
  const tokenFile = path.join(work.dir, 'token-interleaved')
  await writeFile(tokenFile, `${TOKEN}\n`)
  const { server, geodb } = await serverWith('interleaved', ['--no-watch', '--workers', '2', '--admin-token-file', tokenFile])
  const admin = await adminUrl(server)
  const auth = { authorization: `Bearer ${TOKEN}` }
  assert.ok(await alwaysAnswered(server, VIP.eu))
  await replaceFile(geodb, moved)
  const reload = fetch(`${admin}/v1/reload`, { method: 'POST', headers: auth })
  // The control process has the new database (it logs that before the workers have it): the 16 MB
  // are now on their way, a few hundred ms of it.
  await server.waitForLog((l) => l.msg === 'GeoIP database reloaded')
  const patch = await fetch(`${admin}/v1/zones/${ORIGIN}/services/www`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ ttl: 6 }) })
  assert.equal(patch.status, 200, await patch.text())
  const replies = await askMany(server.port, Array.from({ length: 200 }, () => ({ name: NAME, type: TYPE.A, client: LONDON })))
  const stale = replies.filter((r) => addressesOf(r)[0] !== VIP.us).length
  assert.equal(stale, 0, `${stale} of the 200 answers right after the change's 200 were from the old database`)
  assert.equal((await reload).status, 200)
  assert.deepEqual(await digLondon(server), [VIP.us])
})

test('the file watch takes a database renamed into place without a signal', async () => {
  const { server, geodb } = await serverWith('watch', [])
  assert.deepEqual(await digLondon(server), [VIP.eu])
  await replaceFile(geodb, moved)
  const line = await server.waitForLog((l) => l.msg === 'GeoIP database reloaded')
  assert.equal(line.why, 'file changed')
  assert.equal(line.buildEpoch, MOVED_BUILT)
  assert.deepEqual(await digLondon(server), [VIP.us])
  assert.equal(await metricsBuilt(await adminUrl(server)), MOVED_BUILT)
})

test('a replaced database that cannot be opened is logged with its code, E_GEODB, and London is still answered from the last good one', async () => {
  const { server, geodb } = await serverWith('refused-log', ['--no-watch'])
  assert.deepEqual(await digLondon(server), [VIP.eu])
  await replaceFile(geodb, moved.subarray(0, 1200))
  server.proc.kill('SIGHUP')
  const line = await server.waitForLog((l) => l.msg === 'the new GeoIP database cannot be opened; the last good one keeps answering')
  assert.equal(line.code, 'E_GEODB', 'an alert on the log\'s code field sees it, as it sees E_ZONE_* in "zone reload rejected"')
  assert.equal(line.geodb, geodb)
  assert.match(String(line.err), /is not a valid MaxMind DB file/)
  assert.deepEqual(await digLondon(server), [VIP.eu])
})
