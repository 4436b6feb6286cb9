/**
 * deploy/meridian.service, the systemd unit docs/deploy.md installs: systemd's own check of it, and
 * its ExecStart command line run as the unit runs it (another user, no capabilities beyond what the
 * unit grants, a group of processes stopped together), with only its paths and ports swapped for
 * temporary ones.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chmod, chown, cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { DEMO_ZONES, ROOT, spawnServer, tempDir, type LogLine } from '../helpers/server.js'

const UNIT = path.join(ROOT, 'deploy', 'meridian.service')
const INSTALL_DIR = '/opt/meridian'

function installed(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** The unit's `Key=value` lines of [Service]. */
async function serviceKeys(): Promise<Map<string, string>> {
  const text = await readFile(UNIT, 'utf8')
  const section = text.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!
  const keys = new Map<string, string>()
  for (const line of section.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (m) keys.set(m[1]!, m[2]!)
  }
  return keys
}

test('the unit passes systemd-analyze verify (no unknown key, its executable where the install puts it)', { skip: !installed('systemd-analyze') && 'systemd-analyze is not installed' }, async (t) => {
  const { dir, cleanup } = await tempDir('meridian-unit-')
  t.after(cleanup)
  // The checkout stands in for /opt/meridian (verify checks that ExecStart's executable exists).
  const unit = path.join(dir, 'meridian.service')
  await writeFile(unit, (await readFile(UNIT, 'utf8')).replaceAll(INSTALL_DIR, ROOT))
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile('systemd-analyze', ['verify', unit], (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr })),
  )
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '', 'systemd says nothing about the unit')
})

test("the unit's ExecStart runs as an unprivileged user: answers DNS over IPv4 and IPv6, takes a token-guarded admin write into its zones, reloads on SIGHUP, exits 0 on SIGTERM to its group", { skip: process.getuid?.() !== 0 && 'needs root, to start Meridian as another user' }, async (t) => {
  const keys = await serviceKeys()
  assert.equal(keys.get('User'), 'meridian')
  assert.equal(keys.get('KillMode'), 'control-group')
  assert.equal(keys.get('ExecReload'), '/bin/kill -HUP $MAINPID')
  const { dir, cleanup } = await tempDir('meridian-deploy-')
  t.after(cleanup)
  // Swapped: the install, state and credentials directories, and every address for an OS-chosen port.
  const zones = path.join(dir, 'zones')
  const creds = path.join(dir, 'credentials')
  const swaps: [string, string][] = [
    [`${INSTALL_DIR}/`, `${ROOT}/`],
    ['/var/lib/meridian/zones', zones],
    ['${CREDENTIALS_DIRECTORY}', creds],
    ['0.0.0.0:53', '127.0.0.1:0'],
    ['[::]:53', '[::1]:0'],
    ['127.0.0.1:8053', '127.0.0.1:0'],
  ]
  let line = keys.get('ExecStart')!
  for (const [from, to] of swaps) {
    assert.ok(line.includes(from), `ExecStart has ${from}`)
    line = line.replaceAll(from, to)
  }
  const [exe, ...args] = line.split(/\s+/)
  assert.equal(exe, path.join(ROOT, 'dist', 'src', 'cli.js'))

  // The user nobody stands in for meridian: it owns the zones (StateDirectory) and the token (LoadCredential).
  const uid = Number(execFileSync('id', ['-u', 'nobody']).toString())
  const gid = Number(execFileSync('id', ['-g', 'nobody']).toString())
  const token = 'deploy-test-token-0123456789'
  await chmod(dir, 0o755)
  await cp(DEMO_ZONES, zones, { recursive: true, filter: (src) => !path.basename(src).startsWith('.meridian') })
  await mkdir(creds, { mode: 0o500 })
  await writeFile(path.join(creds, 'admin-token'), `${token}\n`, { mode: 0o400 })
  for (const p of [zones, creds, ...(await readdir(zones)).map((f) => path.join(zones, f)), path.join(creds, 'admin-token')]) await chown(p, uid, gid)

  // As systemd starts it: another user, no capabilities (ports above 1023 need none), no new privileges.
  const wrap = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs']
  const server = spawnServer(args, { wrap, cwd: dir, detached: true })
  const pid = server.proc.pid!
  t.after(() => {
    if (server.proc.exitCode === null && server.proc.signalCode === null) process.kill(-pid, 'SIGKILL')
  })
  const started = await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('meridian serving'), 30_000)
  const listen = started.listen as string[]
  const port = (family: string) => Number(/:(\d+)$/.exec(listen.find((a) => a.startsWith(`udp://${family}`))!)![1])

  // Every process of it runs as the user: the control process and its DNS workers.
  const uids = (p: number) => Number(/^Uid:\s+(\d+)/m.exec(execFileSync('cat', [`/proc/${p}/status`]).toString())![1])
  const children = execFileSync('cat', [`/proc/${pid}/task/${pid}/children`]).toString().trim().split(/\s+/).map(Number)
  assert.ok(children.length >= 1, 'DNS workers (the unit leaves --workers at auto)')
  for (const p of [pid, ...children]) assert.equal(uids(p), uid, `process ${p} runs as nobody`)

  // Static records over UDP on IPv4 and TCP on IPv6; a GSLB name answered from its regions (which
  // ones follows their health: nothing serves their checks here).
  const v4 = await dig('127.0.0.1', port('127.0.0.1'), 'mail.gslb.example.test', 'A')
  assert.deepEqual([v4.status, v4.answer.map((r) => r.data)], ['NOERROR', ['192.0.2.25']])
  const v6 = await dig('::1', port('[::1]'), 'mail.gslb.example.test', 'AAAA', '+tcp')
  assert.deepEqual([v6.status, v6.answer.map((r) => r.data)], ['NOERROR', ['2001:db8::25']])
  const www = await dig('127.0.0.1', port('127.0.0.1'), 'www.gslb.example.test', 'A', '+subnet=81.2.69.0/24')
  assert.equal(www.status, 'NOERROR')
  assert.ok(www.answer.length > 0 && www.answer.every((r) => ['127.0.1.1', '127.0.2.1', '127.0.3.1'].includes(r.data)), JSON.stringify(www.answer))
  const serial = async () => Number((await dig('127.0.0.1', port('127.0.0.1'), 'gslb.example.test', 'SOA')).answer[0]!.data.split(' ')[2])
  const before = await serial()

  // The admin API: a write without the token refused, with it written into the zone file by the user.
  const admin = String((await server.waitForLog((l) => l.msg === 'admin API listening')).url)
  const drain = `${admin}/v1/zones/gslb.example.test/regions/eu-west/drain`
  assert.equal((await fetch(drain, { method: 'POST' })).status, 401)
  const ok = await fetch(drain, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  assert.equal(ok.status, 200, await ok.text())
  const file = path.join(zones, 'gslb.example.test.yaml')
  assert.match(await readFile(file, 'utf8'), /drained: true/)
  assert.equal((await stat(file)).uid, uid, 'the zone file written by the user')
  assert.ok((await serial()) > before, 'DNS serves the changed zone (serial: auto rose)')

  // systemctl reload: SIGHUP to the main process.
  process.kill(pid, 'SIGHUP')
  await server.waitForLog((l: LogLine) => l.reason === 'SIGHUP')

  // systemctl stop: SIGTERM to every process of the group; all exit, the control process with 0,
  // having saved the health state as the user.
  process.kill(-pid, 'SIGTERM')
  const [code, signal] = await server.exited
  assert.deepEqual([code, signal], [0, null], server.stderr())
  assert.equal((await stat(path.join(zones, '.meridian', 'health.json'))).uid, uid)
  assert.equal(server.logs.filter((l) => l.level >= 50).length, 0, `no error logged: ${JSON.stringify(server.logs.filter((l) => l.level >= 50))}`)
})
