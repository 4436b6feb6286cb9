/**
 * What the zone-file tests share: a small zone's text and a server on a directory used in place,
 * whose admin API takes a token.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { buildZoneSet, type BuildOptions } from '../../src/config/load.js'
import { ConfigError, formatIssue } from '../../src/errors.js'
import { adminUrl, runCli, startServer, tempDir } from './server.js'

/**
 * The issues of a set of zone files (`[file, text]`, built as one set, serial 1, generation 1), each
 * `file:line:col: message` (`withCode`: the code first, `E_... file:line:col: message`), or [] when
 * the set builds.
 */
export function setIssues(files: readonly (readonly [string, string])[], options: { build?: BuildOptions; withCode?: boolean } = {}): string[] {
  try {
    buildZoneSet(
      files.map(([file, text]) => ({ file, text })),
      () => 1,
      1,
      options.build,
    )
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.issues.map((i) => (options.withCode ? `${i.code} ${formatIssue(i)}` : formatIssue(i)))
  }
}

/**
 * A zone `origin` with its name server, the `regions:` section `regions` and the `services:` section
 * `services` (each its lines, each ending in a newline): the shapes the zone editor must give back.
 */
export const zoneWithRegions = (origin: string, regions: string, services: string) => `origin: ${origin}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
regions:
${regions}
services:
${services}`

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

/** `meridian check` on a fresh directory holding `text` as a.test.yaml (removed after the test). */
export async function checkZoneText(t: TestContext, text: string) {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  const file = path.join(dir, 'a.test.yaml')
  await writeFile(file, text)
  return { dir, file, ...(await runCli(['check', '--zones', dir])) }
}

/**
 * A zone file (`a.test`) with errors of the schema and errors beyond it, shared by the unit test of
 * the loader and the e2e test of `meridian check`, the reload log and POST /v1/reload.
 */
export const BROKEN_ZONE = `origin: a.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1, ns2]
records:
  ns1: { A: 192.0.2.53 }
  "@": { MX: { preference: 10, exchange: mail } }
  ns3: { A: 192.0.2.999 }
regions:
  eu-west:
    location: { country: IE }
    vips: [192.0.2.10]
    check: { type: http, port: 99999 }
services:
  www: { regions: [eu-west, us-east] }
`

/** BROKEN_ZONE's problems in the order of the file: code, and `line:col: path: message`. */
export const BROKEN_ZONE_PROBLEMS: readonly (readonly [string, string])[] = [
  ['E_ZONE_SEMANTIC', '3:11: ns.1: name server ns2.a.test is inside the zone but has no A or AAAA record under records: (glue is required)'],
  ['E_ZONE_SEMANTIC', '6:42: records.@.MX.exchange: MX exchange mail.a.test names nothing in the zone: it must name a host with addresses (RFC 5321 §5.1)'],
  ['E_ZONE_SCHEMA', '7:13: records.ns3.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.999"'],
  ['E_ZONE_SCHEMA', '12:32: regions.eu-west.check.port: must be a port number 1..65535, got 99999'],
  // eu-west, whose check the schema refused, is a region all the same: only us-east is unknown.
  ['E_ZONE_SEMANTIC', '14:29: services.www.regions.1: unknown region "us-east" (regions of this zone: eu-west)'],
]
