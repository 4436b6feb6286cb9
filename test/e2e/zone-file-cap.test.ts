/**
 * The zone-file size cap (`--max-zone-file-bytes`, default 4 MiB): a larger file is refused unread by
 * `meridian serve` and `meridian check`, and served once the option raises the cap; a bad value is a
 * usage error at start-up.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { dig } from '../helpers/dig.js'
import { runCli, startServer, tempDir } from '../helpers/server.js'
import { smallZone } from '../helpers/zones.js'

const MIB = 1024 * 1024

/** A directory holding a.test (small) and big.test, a valid zone padded with comment lines to 5 MiB. */
async function zones(t: TestContext): Promise<{ dir: string; big: string }> {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, 'a.test.yaml'), smallZone('a.test'))
  const head = smallZone('big.test', '192.0.2.50')
  const line = `# ${'x'.repeat(97)}\n`
  const big = path.join(dir, 'big.test.yaml')
  await writeFile(big, head + line.repeat(Math.ceil((5 * MIB - head.length) / line.length)))
  return { dir, big }
}

test('a 5 MiB zone file is refused by default: serve does not start, check says why; both take it with --max-zone-file-bytes raised', { timeout: 90_000 }, async (t) => {
  const { dir, big } = await zones(t)
  const refusal = `${big}: the file is 5.0 MiB: a zone file may hold at most 4 MiB (it is not read; --max-zone-file-bytes sets the limit)`

  const check = await runCli(['check', '--zones', dir])
  assert.equal(check.code, 1, check.stderr)
  assert.equal(check.stderr.split('\n')[0], refusal)
  const serve = await runCli(['serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--workers', '1'])
  assert.equal(serve.code, 1, 'refuses to start')
  assert.ok(serve.stderr.includes(refusal), serve.stderr)

  const raised = await runCli(['check', '--zones', dir, '--max-zone-file-bytes', '8MiB'])
  assert.equal(raised.code, 0, raised.stderr)
  assert.match(raised.stdout, /big\.test\.yaml: zone big\.test OK/)
  // With DNS workers the control process reads the files; the option is its own.
  for (const workers of ['1', '2']) {
    const server = await startServer({ zonesDirInPlace: dir, args: ['--max-zone-file-bytes', String(8 * MIB), '--workers', workers] })
    t.after(() => server.stop())
    assert.equal((await dig('127.0.0.1', server.port, 'www.big.test', 'A')).answer[0]?.data, '192.0.2.50', `--workers ${workers}`)
    await server.stop()
  }
})

test('a running server with the cap lowered refuses a file over it at a reload, the last good set serving', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, 'a.test.yaml'), smallZone('a.test'))
  const server = await startServer({ zonesDirInPlace: dir, args: ['--max-zone-file-bytes', '1KiB'] })
  t.after(() => server.stop())
  const b = path.join(dir, 'b.test.yaml')
  await writeFile(b, smallZone('b.test') + `# ${'x'.repeat(2000)}\n`)
  const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving')
  assert.deepEqual(rejected.errors, [`${b}: the file is ${smallZone('b.test').length + 2003} bytes: a zone file may hold at most 1 KiB (it is not read; --max-zone-file-bytes sets the limit)`])
  assert.equal((await dig('127.0.0.1', server.port, 'www.a.test', 'A')).answer[0]?.data, '192.0.2.10')
  assert.equal((await dig('127.0.0.1', server.port, 'www.b.test', 'A')).status, 'REFUSED')
})

test('a bad --max-zone-file-bytes (0, negative, not a number, over 256 MiB) is a usage error: exit 1, saying what is accepted', async () => {
  for (const v of ['0', '-5', 'lots', '300MiB']) {
    for (const cmd of ['serve', 'check']) {
      const r = await runCli([cmd, `--max-zone-file-bytes=${v}`, '--zones', '/nonexistent'])
      assert.equal(r.code, 1, `${cmd} ${v}`)
      assert.equal(r.stderr.split('\n')[0], `error: option '--max-zone-file-bytes <size>' argument '${v}' is invalid. must be a size from 1 byte to 256 MiB: a whole number of bytes, or of KiB or MiB with the unit after it (16MiB)`)
    }
  }
})
