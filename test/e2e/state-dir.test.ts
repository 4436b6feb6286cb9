/**
 * `--state-dir`: zone files on a volume the server cannot write (a Kubernetes ConfigMap, a
 * read-only checkout), its state (health.json, serials.json) in a directory it can. The server runs
 * as nobody (as in deploy.test.ts) so that the zones directory, owned by root, is really read-only
 * to it; its one region is a real simulated pool whose check moves up and then down.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { access, chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { checkFor, startPools } from '../helpers/gslb.js'
import { spawnServer, tempDir, TEST_GEODB, type LogLine } from '../helpers/server.js'

const uid = Number(execFileSync('id', ['-u', 'nobody']).toString())
const gid = Number(execFileSync('id', ['-g', 'nobody']).toString())
const AS_NOBODY = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs']
/**
 * Up at the first good round; down at the second failed one, with a 1 s timeout: with 0.15 s and
 * fall 1, one slow round on a loaded host (CI) took the region down before its first save.
 */
const timing = { interval: 1.2, timeout: 1, rise: 1, fall: 2 }
const CANNOT = 'cannot save the health state'

/** A zones directory owned by root (0755: read-only to nobody) with one zone of one checked region. */
async function setUp(t: TestContext) {
  if (process.getuid?.() !== 0) {
    t.skip('needs root, to run the server as nobody')
    return undefined
  }
  const pools = await startPools([{ region: 'r1', vip: '127.79.1.1' }])
  t.after(() => Promise.all([...pools.values()].map((p) => p.close())))
  const { dir, cleanup } = await tempDir('meridian-state-dir-')
  t.after(cleanup)
  await chmod(dir, 0o755)
  const zones = path.join(dir, 'zones')
  await mkdir(zones, { mode: 0o755 })
  await writeFile(
    path.join(zones, 'ro.test.yaml'),
    `origin: ro.test
soa: { mname: ns1, rname: hostmaster, serial: auto }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
regions:
  r1: { location: { country: IE }, vips: [127.79.1.1], check: ${checkFor(pools.get('r1')!, timing)} }
services:
  www: { policy: failover }
`,
    { mode: 0o644 },
  )
  return { dir, zones, pool: pools.get('r1')! }
}

/** The server as nobody; stopped (its whole group) after the test, before the directory goes. */
function serve(t: TestContext, zones: string, extra: string[]) {
  const server = spawnServer(['serve', '--zones', zones, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--workers', '1', '--geodb', TEST_GEODB, ...extra], { wrap: AS_NOBODY, detached: true })
  t.after(async () => {
    if (server.proc.exitCode === null && server.proc.signalCode === null) {
      process.kill(-server.proc.pid!, 'SIGTERM')
      await server.exited
    }
  })
  return server
}

const stateChange = (to: string) => (l: LogLine) => typeof l.msg === 'string' && l.msg.startsWith('health: ') && l.msg.endsWith(` is ${to}`)

test('with --state-dir, a server whose zones directory it cannot write keeps health.json and serials.json there, and reads them back', { timeout: 60_000 }, async (t) => {
  const s = await setUp(t)
  if (!s) return
  const state = path.join(s.dir, 'state')
  await mkdir(state, { mode: 0o700 })
  await chown(state, uid, gid)
  const server = serve(t, s.zones, ['--state-dir', state])
  await server.waitForLog(stateChange('up'), 20_000)
  const health = path.join(state, 'health.json')
  const deadline = Date.now() + 10_000
  while (!(await access(health).then(() => true, () => false)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  const saved = JSON.parse(await readFile(health, 'utf8')) as { targets: Record<string, { state: string }> }
  assert.deepEqual(Object.values(saved.targets).map((x) => x.state), ['up'])
  const serials = JSON.parse(await readFile(path.join(state, 'serials.json'), 'utf8')) as Record<string, { serial: number }>
  assert.ok(serials['ro.test']!.serial > 0)
  assert.equal(await access(path.join(s.zones, '.meridian')).then(() => true, () => false), false, 'nothing written beside the zones')
  assert.deepEqual(server.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(CANNOT)), [])
  // Stopped here, before the after hooks remove the directory (it saves once more as it stops).
  process.kill(-server.proc.pid!, 'SIGTERM')
  await server.exited
})

test('without it, a zones directory it cannot write is said once (not at every save), and the server serves on', { timeout: 60_000 }, async (t) => {
  const s = await setUp(t)
  if (!s) return
  const server = serve(t, s.zones, [])
  await server.waitForLog(stateChange('up'), 20_000)
  await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith(CANNOT), 10_000)
  // Two more changes, two more saves that fail. Counted from here: on a loaded host the check had
  // gone down once (then a 150 ms timeout, fall 1) before its first up, and a wait for any `down`
  // line then returned at once and restarted the pool before the poller saw it stopped.
  const seen = (to: string) => server.logs.filter(stateChange(to)).length
  const downs = seen('down')
  const ups = seen('up')
  await s.pool.stop()
  await server.waitForLog((l) => stateChange('down')(l) && seen('down') > downs, 20_000)
  await s.pool.start()
  await server.waitForLog((l) => stateChange('up')(l) && seen('up') > ups, 20_000)
  // A stop saves once more: once it has exited, every save has been tried.
  process.kill(-server.proc.pid!, 'SIGTERM')
  await server.exited
  assert.ok(server.logs.some((l) => l.msg === 'stopped'))
  const said = server.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(CANNOT))
  assert.equal(said.length, 1, JSON.stringify(said))
  assert.match(String(said[0]!.msg), /--state-dir/)
})
