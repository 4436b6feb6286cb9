/**
 * What the zone-file tests share: a small zone's text and a server on a directory used in place,
 * whose admin API takes a token.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { adminUrl, startServer, tempDir } from './server.js'

/** The text of a zone `origin` with its name server and `www` (A `www`). */
export const smallZone = (origin: string, www = '192.0.2.10') => `origin: ${origin}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  www: { A: ${www} }
`

/** A server on `dir` (in place) whose admin API takes the bearer token `t0ken`; stopped after the test. */
export async function serveInPlace(t: TestContext, dir: string, args: string[] = []) {
  const tok = await tempDir('meridian-token-')
  t.after(tok.cleanup)
  await writeFile(path.join(tok.dir, 'token'), 't0ken\n')
  const server = await startServer({ zonesDirInPlace: dir, args: ['--admin-token-file', path.join(tok.dir, 'token'), ...args] })
  t.after(() => server.stop())
  return { server, url: await adminUrl(server) }
}
