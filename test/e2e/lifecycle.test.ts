/**
 * The process as an operator meets it: `meridian check`, start-up, hot reload (file watch and
 * SIGHUP), the last good set serving through a bad edit, serial: auto, and a clean SIGTERM.
 */
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { DNS_V8_FLAGS } from '../../src/cluster/primary.js'
import { adminUrl, DEMO_ZONES, runCli, spawnServer, startServer, tempDir, type LogLine, type RunningServer, type SpawnedServer } from '../helpers/server.js'
import { dig } from '../helpers/dig.js'

describe('meridian check', () => {
  test('the shipped demo zone passes', async () => {
    const r = await runCli(['check', '--zones', DEMO_ZONES])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /gslb\.example\.test\.yaml: zone gslb\.example\.test OK/)
  })

  test('a broken file lists every error as file:line:col and exits non-zero', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const bad = path.join(dir, 'bad.yaml')
    await writeFile(bad, 'origin: bad.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.999 }\n  www: { AAAA: 10.0.0.1, TTL: 5 }\n')
    const r = await runCli(['check', '--zones', dir])
    assert.equal(r.code, 1)
    const lines = r.stderr.trim().split('\n')
    assert.ok(lines.includes(`${bad}:5:13: records.ns1.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.999"`), r.stderr)
    assert.ok(lines.includes(`${bad}:6:16: records.www.AAAA: must be an IPv6 address such as 2001:db8::1, got "10.0.0.1"`), r.stderr)
    assert.ok(lines.some((l) => l.startsWith(`${bad}:6:26: records.www.TTL: unknown key "TTL"`)), r.stderr)
    assert.match(lines.at(-1)!, /^3 error\(s\)/)
  })

  test('a directory with no zone files fails the check: a server on it would refuse every query', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const r = await runCli(['check', '--zones', dir])
    assert.equal(r.code, 1)
    assert.equal(r.stderr, `${dir}: no zone files (*.yaml, *.yml); a server on this directory would refuse every query\n`)
  })

  test('a directory named like a zone file is said not to be read, as the server skips it; the zones beside it pass', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await mkdir(path.join(dir, 'old.yaml'))
    await writeFile(path.join(dir, 'demo.yaml'), await readFile(path.join(DEMO_ZONES, 'gslb.example.test.yaml')))
    const r = await runCli(['check', '--zones', dir])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, `${path.join(dir, 'old.yaml')}: a directory, not a zone file: not read\n`)
    assert.match(r.stdout, /demo\.yaml: zone gslb\.example\.test OK/)
  })
})

describe('serving and reloading', () => {
  test('start-up logs one line saying what is served where, then answers', async (t) => {
    const server = await startServer({ listen: ['127.0.0.1:0', '[::1]:0'] })
    t.after(() => server.stop())
    const line = server.logs.find((l) => String(l.msg).startsWith('meridian serving'))!
    assert.deepEqual(line.zones, ['gslb.example.test'])
    assert.equal((line.listen as string[]).length, 4, 'UDP and TCP on each of two addresses')
    const v6port = Number(/\[::1\]:(\d+)$/.exec((line.listen as string[]).find((l) => l.includes('[::1]'))!)![1])
    const r = await dig('::1', v6port, 'gslb.example.test', 'SOA')
    assert.equal(r.status, 'NOERROR')
    assert.ok(r.flags.includes('aa'))
  })

  test('started from another directory, it opens the GeoIP database it ships with', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const server = await startServer({ cwd: dir })
    t.after(() => server.stop())
    // The README's UK network is answered from eu-west: the GeoIP database was found and read.
    const r = await dig('127.0.0.1', server.port, 'www.gslb.example.test', 'A', '+subnet=81.2.69.0/24')
    assert.deepEqual(r.answer.map((a) => a.data), ['127.0.2.1'])
  })

  test('the meridian executable runs node with the DNS V8 flags, and says so in its start-up line', async (t) => {
    const server = await startServer()
    t.after(() => server.stop())
    const line = server.logs.find((l) => String(l.msg).startsWith('meridian serving'))!
    assert.deepEqual(line.nodeArgs, [...DNS_V8_FLAGS])
    const argv = (await readFile(`/proc/${server.proc.pid}/cmdline`, 'utf8')).split('\0')
    for (const flag of DNS_V8_FLAGS) assert.ok(argv.includes(flag), `the server runs with ${flag}: ${argv.join(' ')}`)
    assert.deepEqual(server.logs.filter((l) => l.level >= 40), [], 'no warning')
  })

  test('/metrics has the process metrics but not the GC-pause histogram; --gc-metrics adds it, and it counts collections', async (t) => {
    const plain = await startServer({ args: ['--admin', '127.0.0.1:0'] })
    t.after(() => plain.stop())
    const withGc = await startServer({ args: ['--admin', '127.0.0.1:0', '--gc-metrics'] })
    t.after(() => withGc.stop())
    const scrape = async (s: RunningServer) => (await fetch(`${await adminUrl(s)}/metrics`)).text()
    const text = await scrape(plain)
    assert.match(text, /^meridian_process_resident_memory_bytes \d+/m)
    assert.match(text, /^meridian_nodejs_eventloop_lag_p99_seconds /m)
    assert.doesNotMatch(text, /gc_duration/)
    // Each scrape allocates in the server: within a few of them it has collected garbage.
    const counted = /^meridian_nodejs_gc_duration_seconds_count\{kind="\w+"\} [1-9]/m
    let gcText = await scrape(withGc)
    for (let i = 0; i < 200 && !counted.test(gcText); i++) gcText = await scrape(withGc)
    assert.match(gcText, counted)
  })

  test('one process under a plain node warns once, naming the flags it lacks and the command that has them', async (t) => {
    const server = await startServer({ nodeArgs: ['--max-semi-space-size=2'] })
    t.after(() => server.stop())
    const warnings = server.logs.filter((l) => l.level === 40)
    assert.equal(warnings.length, 1, JSON.stringify(warnings))
    const w = warnings[0]!
    // The operator's own semi-space size stands; only the growth flag is missing.
    assert.deepEqual(w.unset, ['--heap-growing-percent=50'])
    assert.match(String(w.run), /^node --max-semi-space-size=2 --heap-growing-percent=50 \S+cli\.js serve /)
    assert.match(w.msg, /meridian executable/)
    const line = server.logs.find((l) => String(l.msg).startsWith('meridian serving'))!
    assert.deepEqual(line.nodeArgs, ['--max-semi-space-size=2'])
  })

  test('a changed zone file is picked up, a bad edit keeps the last good set serving, and the auto serial rises', async (t) => {
    const server = await startServer()
    t.after(() => server.stop())
    const file = path.join(server.zonesDir, 'gslb.example.test.yaml')
    const soa = async () => Number((await dig('127.0.0.1', server.port, 'gslb.example.test', 'SOA', '+norec')).answer[0]!.data.split(' ')[2])
    const serial1 = await soa()
    assert.ok(serial1 > 1_700_000_000, 'auto serial starts from the clock')

    const loaded = (gen: number) => (l: LogLine) => l.msg === 'zones loaded' && Number(l.generation) >= gen
    const original = await readFile(file, 'utf8')
    await writeFile(file + '.tmp', original.replace('  mail:\n', '  added:\n    A: 192.0.2.77\n  mail:\n'))
    await rename(file + '.tmp', file)
    await server.waitForLog(loaded(2))
    const added = await dig('127.0.0.1', server.port, 'added.gslb.example.test', 'A')
    assert.equal(added.answer[0]?.data, '192.0.2.77')
    const serial2 = await soa()
    assert.ok(serial2 > serial1, `serial rose: ${serial1} -> ${serial2}`)

    await writeFile(file, original.replace('A: 127.0.0.1', 'A: 127.0.0.300'))
    const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving')
    assert.ok((rejected.errors as string[]).some((e) => e.includes('gslb.example.test.yaml:20:8: records.ns1.A: must be an IPv4 address')), JSON.stringify(rejected.errors))
    const still = await dig('127.0.0.1', server.port, 'added.gslb.example.test', 'A')
    assert.equal(still.answer[0]?.data, '192.0.2.77', 'the last good set keeps serving')
    assert.equal(await soa(), serial2)
  })

  test('SIGHUP reloads the whole set', async (t) => {
    const server = await startServer({ args: ['--no-watch'] })
    t.after(() => server.stop())
    const file = path.join(server.zonesDir, 'gslb.example.test.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('  mail:\n', '  hup:\n    TXT: reloaded\n  mail:\n'))
    const before = await dig('127.0.0.1', server.port, 'hup.gslb.example.test', 'TXT')
    assert.equal(before.status, 'NXDOMAIN', 'with --no-watch the file change alone does nothing')
    server.proc.kill('SIGHUP')
    await server.waitForLog((l) => l.msg === 'zones loaded' && l.reason === 'SIGHUP')
    const after = await dig('127.0.0.1', server.port, 'hup.gslb.example.test', 'TXT')
    assert.equal(after.answer[0]?.data, '"reloaded"')
  })

  /** `serve` spawned on `dir` with `args` (spawnServer: no waiting for the start-up line). */
  const spawnServe = (dir: string, args: string[]) => spawnServer(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args])
  /** Waits for a log line of `s` for up to 30 s (a start-up with --health-wait takes a few). */
  const logged = (s: SpawnedServer, match: (l: LogLine) => boolean) => s.waitForLog(match, 30_000)

  const holdZone = (check: string) => `origin: hw.test
soa: { mname: ns1, rname: h, minimum: 10 }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
regions:
  r1: { location: { country: US }, vips: [192.0.2.1], check: ${check} }
services:
  www: { policy: geo }
`

  test('signals during start-up: a SIGTERM ends it at once with exit 0 (and a SIGHUP before it does not kill it)', { timeout: 60_000 }, async (t) => {
    // A check that cannot get a state for a long while (an unroutable VIP, a 20 s timeout) holds the
    // start-up in --health-wait; the admin API is up by then, and says so in the log.
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'hw.yaml'), holdZone('{ url: "http://{vip}:9/", interval: 30, timeout: 20 }'))
    for (const workers of ['1', '2']) {
      const s = spawnServe(dir, ['--workers', workers, '--health-wait', '120'])
      await logged(s, (l) => l.msg === 'admin API listening')
      s.proc.kill('SIGHUP')
      s.proc.kill('SIGTERM')
      assert.deepEqual(await s.exited, [0, null], `--workers ${workers}: exit 0, not killed by SIGHUP or SIGTERM; stderr: ${s.stderr()}`)
      assert.ok(s.logs.some((l) => l.msg === 'stopped during start-up' && l.signal === 'SIGTERM'), `--workers ${workers}: says it stopped during start-up`)
      assert.ok(!s.logs.some((l) => String(l.msg).startsWith('meridian serving')), 'it never served')
      assert.doesNotMatch(s.stderr(), /Error/)
    }
  })

  test('a SIGHUP during start-up is kept: the zones are reloaded once serving starts', { timeout: 60_000 }, async (t) => {
    // A tcp check of a port nothing listens on: down at its first round (fall 1), so the wait ends.
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const deadPort = (probe.address() as AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))
    await writeFile(path.join(dir, 'hw.yaml'), holdZone(`{ type: tcp, target: 127.0.0.1, port: ${deadPort}, interval: 2, timeout: 0.5, fall: 1 }`))
    const s = spawnServe(dir, ['--workers', '1', '--health-wait', '30', '--no-watch'])
    t.after(() => s.proc.kill('SIGKILL'))
    await logged(s, (l) => l.msg === 'admin API listening')
    // The set is loaded; a record added now is seen only by a reload (--no-watch): the SIGHUP's.
    await writeFile(path.join(dir, 'hw.yaml'), holdZone(`{ type: tcp, target: 127.0.0.1, port: ${deadPort}, interval: 2, timeout: 0.5, fall: 1 }`).replace('  ns1: { A: 192.0.2.53 }', '  ns1: { A: 192.0.2.53 }\n  late: { A: 192.0.2.77 }'))
    s.proc.kill('SIGHUP')
    await logged(s, (l) => String(l.msg).startsWith('meridian serving'))
    await logged(s, (l) => l.msg === 'zones loaded' && l.reason === 'SIGHUP')
    const port = Number(/:(\d+)$/.exec((s.logs.find((l) => String(l.msg).startsWith('meridian serving'))!.listen as string[])[0]!)![1])
    const r = await dig('127.0.0.1', port, 'late.hw.test', 'A')
    assert.deepEqual(r.answer.map((a) => a.data), ['192.0.2.77'])
    s.proc.kill('SIGTERM')
    assert.deepEqual(await s.exited, [0, null])
  })

  test('SIGTERM closes the sockets and exits 0', async () => {
    const server = await startServer()
    const code = await server.stop()
    assert.equal(code, 0)
    assert.ok(server.logs.some((l) => l.msg === 'stopped'))
    const r = await dig('127.0.0.1', server.port, 'gslb.example.test', 'SOA', '+tcp')
    assert.equal(r.status, 'NONE', 'nothing answers once stopped')
  })

  test('a bad option value refuses to start, naming the option and what it takes', async () => {
    const cases: [string[], RegExp][] = [
      [['--latency-grace', '-5'], /option '--latency-grace <ms>' argument '-5' is invalid\. must be an integer 0\.\.60000/],
      [['--latency-grace', '2s'], /option '--latency-grace <ms>' argument '2s' is invalid/],
      [['--answer-cache', 'lots'], /option '--answer-cache <entries>' argument 'lots' is invalid/],
      [['--workers', '0'], /option '--workers <n>' argument '0' is invalid\. must be an integer 1\.\.256, or auto/],
      [['--edns-udp-size', '100'], /option '--edns-udp-size <bytes>' argument '100' is invalid\. must be an integer 512\.\.4096/],
    ]
    const results = await Promise.all(cases.map(([args]) => runCli(['serve', '--zones', DEMO_ZONES, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args])))
    results.forEach((r, i) => {
      assert.notEqual(r.code, 0, `${cases[i]![0].join(' ')} exits non-zero`)
      assert.match(r.stderr, cases[i]![1])
      assert.doesNotMatch(r.stdout, /meridian serving/, 'nothing was served')
    })
  })

  test('a server whose zone files are broken at start-up refuses to start and says why', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'x.yaml'), 'origin: x.test\n')
    const r = await runCli(['serve', '--zones', dir, '--listen', '127.0.0.1:0'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /x\.yaml:1:1: missing required key "soa"/)
    assert.match(r.stderr, /^meridian: E_ZONE_SCHEMA: the zone files in \S+ cannot be loaded \(2 error\(s\), listed above\)$/m)
    const fatal = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine).filter((l) => l.level >= 50)
    assert.deepEqual(fatal.map((l) => [l.level, l.code, l.msg]), [
      [50, 'E_ZONE_SCHEMA', 'zone files rejected; no set was loaded before, so none is served'],
      [60, 'E_ZONE_SCHEMA', `cannot start: the zone files in ${dir} cannot be loaded (2 error(s), listed above)`],
    ])
  })

  test('each start-up failure says its error code on stderr and in the log, and exits 1', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    const missing = path.join(dir, 'nothing-here')
    const base = ['serve', '--admin', '127.0.0.1:0', '--workers', '1']
    const cases: [string[], string][] = [
      [['--zones', missing, '--listen', '127.0.0.1:0'], `${missing}: cannot read the zones directory: ENOENT`],
      [['--zones', DEMO_ZONES, '--listen', '127.0.0.1:0', '--geodb', path.join(dir, 'none.mmdb')], 'meridian: E_GEODB: the GeoIP database cannot be opened'],
      [['--zones', DEMO_ZONES, '--listen', '192.0.2.1:0'], 'meridian: E_LISTEN: a DNS listen address cannot be bound'],
    ]
    for (const [args, expected] of cases) {
      const r = await runCli([...base, ...args])
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.ok(r.stderr.split('\n').some((l) => l.startsWith(expected)), `${args.join(' ')}: expected a line starting ${expected}, got: ${r.stderr}`)
    }
  })
})
