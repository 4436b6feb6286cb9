/**
 * Zone files as an operator edits them under a running server: files that cannot be read, files
 * replaced by editors and deployment tools, and what the server says and keeps serving meanwhile.
 */
import assert from 'node:assert/strict'
import { mkdir, symlink, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { adminUrl, runCli, startServer, tempDir, type LogLine } from '../helpers/server.js'
import { dig } from '../helpers/dig.js'

const zone = (origin: string, www = '192.0.2.10') => `origin: ${origin}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  www: { A: ${www} }
`

/** A server on `dir` (in place) whose admin API takes the bearer token `t0ken`. */
async function serve(t: TestContext, dir: string, args: string[] = []) {
  const tok = await tempDir('meridian-token-')
  t.after(tok.cleanup)
  await writeFile(path.join(tok.dir, 'token'), 't0ken\n')
  const server = await startServer({ zonesDirInPlace: dir, args: ['--admin-token-file', path.join(tok.dir, 'token'), ...args] })
  t.after(() => server.stop())
  return { server, url: await adminUrl(server) }
}

const reloadErrors = async (url: string) => Number(/meridian_config_reloads_total\{result="error"\} (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1])

describe('zone files that cannot be read', () => {
  test('a dangling symbolic link or a directory named like a zone file: the reload is rejected with the file and why, logged and counted; the last good set keeps serving', async (t) => {
    const { dir, cleanup } = await tempDir()
    t.after(cleanup)
    await writeFile(path.join(dir, 'a.test.yaml'), zone('a.test'))
    const { server, url } = await serve(t, dir)
    const rejected = (n: number) => (l: LogLine) => l.msg === 'zone reload rejected; the last good set keeps serving' && server.logs.filter((x) => x.msg === l.msg).length >= n

    const link = path.join(dir, 'b.test.yaml')
    await symlink(path.join(dir, 'checkout', 'b.test.yaml'), link)
    const first = await server.waitForLog(rejected(1))
    assert.equal(first.code, 'E_ZONE_IO')
    assert.deepEqual(first.errors, [`${link}: cannot read the zone file: it is a symbolic link to ${path.join(dir, 'checkout', 'b.test.yaml')}, which does not exist`])
    assert.equal(await reloadErrors(url), 1)
    assert.equal((await dig('127.0.0.1', server.port, 'www.a.test', 'A')).answer[0]?.data, '192.0.2.10')

    await unlink(link)
    await mkdir(path.join(dir, 'c.test.yaml'))
    const second = await server.waitForLog(rejected(2))
    assert.deepEqual(second.errors, [`${path.join(dir, 'c.test.yaml')}: cannot read the zone file: it is a directory`])
    assert.equal((await dig('127.0.0.1', server.port, 'www.a.test', 'A')).answer[0]?.data, '192.0.2.10')

    // POST /v1/reload says the same, not an internal error.
    const r = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
    const body = (await r.json()) as { error: string; message: string }
    assert.equal(body.error, 'E_ZONE_IO', JSON.stringify(body))
    assert.match(body.message, /c\.test\.yaml: cannot read the zone file: it is a directory/)

    // meridian check lists the file and exits 1 (not 2, an unexpected failure).
    const c = await runCli(['check', '--zones', dir])
    assert.equal(c.code, 1, c.stderr)
    assert.ok(c.stderr.includes(`${path.join(dir, 'c.test.yaml')}: cannot read the zone file: it is a directory\n`), c.stderr)
  })
})
