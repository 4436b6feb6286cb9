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
  /** CSV rows added after the test database's (paddingRows). */
  extraRows?: string[]
}

/**
 * Builds the test database with `replace` applied to its CSV rows (each `from` must be there), and
 * `extraRows` added, into `out`.
 */
export async function buildTestDb(out: string, replace: [from: string, to: string][], { built, extraRows = [] }: TestDbOptions = {}): Promise<string> {
  let csv = await readFile(TEST_NETWORKS_CSV, 'utf8')
  for (const [from, to] of replace) {
    if (!csv.includes(from)) throw new Error(`${TEST_NETWORKS_CSV} has no row ${from}`)
    csv = csv.replace(from, to)
  }
  if (extraRows.length > 0) csv = `${csv.replace(/\n*$/, '\n')}${extraRows.join('\n')}\n`
  const csvFile = `${out}.csv`
  await writeFile(csvFile, csv)
  const epoch = built === undefined ? [] : ['--epoch', built]
  await run(process.execPath, [path.join(ROOT, 'scripts', 'geodb', 'build-test-db.mjs'), '--csv', csvFile, '--out', out, ...epoch])
  return out
}

/**
 * CSV rows that make a test database about `bytes` bigger, towards the size of a real City database
 * (tens of MB), which takes a DNS worker a noticeable time to be sent and to open: /64s of
 * 2001:db8:8000::/48 (a range no test asks about) in Antarctica, each with a distinct city name of
 * about `rowBytes` (records the writer cannot share).
 */
export function paddingRows(bytes: number, rowBytes = 16 * 1024): string[] {
  const count = Math.ceil(bytes / rowBytes)
  if (count > 0x10000) throw new RangeError(`paddingRows: at most 65536 rows of ${rowBytes} bytes`)
  return Array.from({ length: count }, (_, i) => {
    const name = `Padding ${i} `
    return `2001:db8:8000:${i.toString(16)}::/64,AQ,AN,-90,0,${name}${'x'.repeat(Math.max(0, rowBytes - name.length))}`
  })
}

/** Puts `bytes` at `file` as an update job does: a temporary file beside it, renamed over it. */
export async function replaceFile(file: string, bytes: Buffer | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`
  await writeFile(tmp, bytes)
  await rename(tmp, file)
}
