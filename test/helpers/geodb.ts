/**
 * Test GeoIP databases other than geodb/test/meridian-test.mmdb: built by the same checked-in script
 * (scripts/geodb/build-test-db.mjs) from its CSV with rows changed, and put in place the way an
 * update job does (written beside, then renamed over).
 */
import { execFile } from 'node:child_process'
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './server.js'

const run = promisify(execFile)
export const TEST_NETWORKS_CSV = path.join(ROOT, 'geodb', 'test', 'networks.csv')

/** London's /26 of the test database (GB), and the row that moves it to Ashburn (US). */
export const LONDON_ROW = '192.0.2.0/26,GB,EU,51.5074,-0.1278,London'
export const LONDON_IN_ASHBURN = '192.0.2.0/26,US,NA,39.0438,-77.4874,Ashburn'

/** The test database's build time (build-test-db.mjs's BUILD_EPOCH, unless `--epoch` gives another). */
export const TEST_DB_BUILT = '2025-01-01T00:00:00.000Z'

export interface TestDbOptions {
  /** Its build_epoch (the script's `--epoch`): an ISO 8601 date or time with a zone, or seconds; default TEST_DB_BUILT. */
  built?: string
}

/** Builds the test database with `replace` applied to its CSV rows (each `from` must be there) into `out`. */
export async function buildTestDb(out: string, replace: [from: string, to: string][], { built }: TestDbOptions = {}): Promise<string> {
  let csv = await readFile(TEST_NETWORKS_CSV, 'utf8')
  for (const [from, to] of replace) {
    if (!csv.includes(from)) throw new Error(`${TEST_NETWORKS_CSV} has no row ${from}`)
    csv = csv.replace(from, to)
  }
  const csvFile = `${out}.csv`
  await writeFile(csvFile, csv)
  const epoch = built === undefined ? [] : ['--epoch', built]
  await run(process.execPath, [path.join(ROOT, 'scripts', 'geodb', 'build-test-db.mjs'), '--csv', csvFile, '--out', out, ...epoch])
  return out
}

/** Puts `bytes` at `file` as an update job does: a temporary file beside it, renamed over it. */
export async function replaceFile(file: string, bytes: Buffer | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`
  await writeFile(tmp, bytes)
  await rename(tmp, file)
}
