/**
 * Zone files on a file system without hard links (exFAT, as USB sticks and some NAS shares have it;
 * FAT and some FUSE and network file systems alike): link(2) fails with EPERM there, which a create
 * used to turn into a 500. The file system is real: an exFAT image on a loop device, mounted with
 * exfat-fuse. Where that cannot be done (not root, no /dev/fuse, no loop device, exfat-fuse or
 * exfatprogs missing) the tests skip, saying why.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { access, link, mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { promisify } from 'node:util'
import { createFileAtomic } from '../../src/store/atomic.js'
import { tempDir } from '../helpers/server.js'
import { dig } from '../helpers/dig.js'
import { serveInPlace, smallZone } from '../helpers/zones.js'

const run = promisify(execFile)

/**
 * A fresh exFAT file system mounted on a temporary directory, and what unmounts and removes it (for
 * the test to add as an after hook once whatever uses it, a server, has its own stop added: node:test
 * runs them in the order added); or undefined, the test skipped, saying why.
 */
async function exfat(t: TestContext): Promise<{ mnt: string; teardown: () => Promise<void> } | undefined> {
  if (process.getuid?.() !== 0) return skip(t, 'mounting needs root')
  if (!(await access('/dev/fuse').then(() => true, () => false))) return skip(t, 'no /dev/fuse')
  const { dir, cleanup } = await tempDir('meridian-exfat-')
  // Undone last made first: the mount, the loop device, the directory; no step stops the others.
  const undo: (() => Promise<unknown>)[] = [cleanup]
  const teardown = async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined)
  }
  const failed = async (reason: string) => {
    await teardown()
    return skip(t, reason)
  }
  const image = path.join(dir, 'image')
  const mnt = path.join(dir, 'mnt')
  await mkdir(mnt)
  await writeFile(image, '')
  await truncate(image, 8 * 1024 * 1024)
  try {
    await run('mkfs.exfat', [image], { env: SBIN })
  } catch (err) {
    return failed(`mkfs.exfat (exfatprogs): ${firstLine(err)}`)
  }
  let loop: string
  try {
    loop = (await run('losetup', ['--find', '--show', image], { env: SBIN })).stdout.trim()
  } catch (err) {
    return failed(`losetup: ${firstLine(err)}`)
  }
  undo.push(() => run('losetup', ['--detach', loop], { env: SBIN }))
  try {
    await run('mount.exfat-fuse', [loop, mnt], { env: SBIN })
  } catch (err) {
    return failed(`mount.exfat-fuse (exfat-fuse): ${firstLine(err)}`)
  }
  undo.push(() => run('umount', [mnt]))
  // The premise: this file system refuses hard links.
  await writeFile(path.join(mnt, 'probe'), '')
  const refused = await link(path.join(mnt, 'probe'), path.join(mnt, 'probe2')).then(
    () => undefined,
    (err: NodeJS.ErrnoException) => err.code,
  )
  if (refused !== 'EPERM') {
    await teardown()
    assert.fail(`exFAT should refuse link(2) with EPERM; it gave ${refused ?? 'success'}`)
  }
  return { mnt, teardown }
}

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` }
const firstLine = (err: unknown) => (err as Error).message.split('\n')[0]
function skip(t: TestContext, reason: string): undefined {
  t.skip(`no exFAT file system to test on: ${reason}`)
  return undefined
}

const body = (origin: string, www: string) => JSON.stringify({ origin, soa: { mname: 'ns1', rname: 'hostmaster' }, ns: ['ns1'], records: { ns1: { A: '192.0.2.53' }, www: { A: www } } })

test('POST /v1/zones on a file system without hard links creates the zone (201, served), warning once that it renames', { timeout: 60_000 }, async (t) => {
  const fs = await exfat(t)
  if (fs === undefined) return
  const dir = fs.mnt
  await writeFile(path.join(dir, 'a.test.yaml'), smallZone('a.test'))
  const { server, url } = await serveInPlace(t, dir).catch(async (err: unknown) => {
    await fs.teardown()
    throw err
  })
  t.after(fs.teardown)
  const create = (origin: string, www: string) => fetch(`${url}/v1/zones`, { method: 'POST', headers: { authorization: 'Bearer t0ken', 'content-type': 'application/json' }, body: body(origin, www) })

  const r = await create('b.test', '192.0.2.30')
  assert.equal(r.status, 201, await r.clone().text())
  assert.equal((await dig('127.0.0.1', server.port, 'www.b.test', 'A')).answer[0]?.data, '192.0.2.30')
  assert.match(await readFile(path.join(dir, 'b.test.yaml'), 'utf8'), /^origin: b\.test$/m)

  const again = await create('c.test', '192.0.2.40')
  assert.equal(again.status, 201, await again.clone().text())
  assert.equal((await dig('127.0.0.1', server.port, 'www.c.test', 'A')).answer[0]?.data, '192.0.2.40')

  const warnings = server.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('the file system of the zones directory has no hard links'))
  assert.equal(warnings.length, 1, 'said once')
  assert.equal(warnings[0]!.level, 40)
  assert.equal(warnings[0]!.dir, dir)
  // No temporary file left beside the zones.
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [])
})

test('createFileAtomic without hard links never replaces a file at the name (EEXIST, the file and the directory as they were)', { timeout: 30_000 }, async (t) => {
  const fs = await exfat(t)
  if (fs === undefined) return
  t.after(fs.teardown)
  const dir = fs.mnt
  const file = path.join(dir, 'x.test.yaml')
  const seen: string[] = []
  const onNoHardLinks = (err: NodeJS.ErrnoException) => seen.push(err.code ?? '?')

  await createFileAtomic(file, 'one\n', onNoHardLinks)
  assert.equal(await readFile(file, 'utf8'), 'one\n')
  assert.deepEqual(seen, ['EPERM'])

  await assert.rejects(createFileAtomic(file, 'two\n', onNoHardLinks), { code: 'EEXIST' })
  assert.equal(await readFile(file, 'utf8'), 'one\n', 'the file there is kept')
  assert.deepEqual((await readdir(dir)).sort(), ['probe', 'x.test.yaml'], 'no temporary file left')
})
