import { link, lstat, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'

/** The temporary files writeFileAtomic makes: `.NAME.PID.STAMP.tmp` (NAME cut short when the whole would be too long: tempName). */
export const TEMP_RE = /^\.(.+)\.(\d+)\.\d+\.tmp$/

/** The most octets a file name may have (NAME_MAX of Linux file systems). */
const NAME_MAX = 255

/**
 * The temporary file's name for `base` (a file's name) written by process `pid` with `stamp`
 * (tempStamp): `.BASE.PID.STAMP.tmp`, BASE cut from its end until the whole fits in NAME_MAX
 * octets. A zone of a long origin has a file name of up to 255 octets, and its temporary file
 * (25-30 octets more) could not be made: every create or change of it was a 500 ENAMETOOLONG.
 */
export function tempName(base: string, pid: number, stamp: number): string {
  const tail = `.${pid}.${stamp}.tmp`
  let head = base
  while (Buffer.byteLength(`.${head}${tail}`) > NAME_MAX) head = head.slice(0, -1)
  return `.${head}${tail}`
}

let lastStamp = 0
/**
 * The number in a temporary file's name: the time in ms, or one more than the last one this process
 * used, so no two writes share a temporary file. With the time alone, two writes of one file in
 * the same millisecond (two saves of the health state, a state change's and a SIGTERM's) opened the
 * same one: the second rename failed (ENOENT) and the file could hold the two writes mixed.
 */
function tempStamp(): number {
  lastStamp = Math.max(lastStamp + 1, Date.now())
  return lastStamp
}

/**
 * Whether the NAME of a temporary file (TEMP_RE's first group) is that of file `base`: the whole
 * name, or its start when the temporary file's name was cut to fit (tempName: then within a few
 * octets of NAME_MAX, as a surrogate pair or a multi-octet character may leave it short).
 */
const tempOf = (tempFile: string, name: string, base: string): boolean => name === base || (Buffer.byteLength(tempFile) > NAME_MAX - 4 && base.startsWith(name))

/**
 * Writes a file so that a crash at any moment leaves either the old or the new content, never a
 * mix: write a temporary file beside it, fsync it, rename it over the target, fsync the directory.
 * A symbolic link is written through: the file it points to gets the new content, and the link
 * stays (zone files linked into a checkout of a configuration repository keep being that).
 * The new file has the old one's permission bits, and its owner and group where this process may
 * set them (root), before it takes the old one's place: a crash never leaves it with others.
 * A file that did not exist is created 0644 (less the umask).
 */
export async function writeFileAtomic(path_: string, data: string | Buffer): Promise<void> {
  const file = await realpath(path_).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return path_ // a new file (or a dangling link: written as a file)
    throw err
  })
  const dir = path.dirname(file)
  const old = await stat(file).catch(() => undefined)
  const tmp = await writeTemp(file, data, 'w', old ? 0o600 : 0o644, async (fh) => {
    if (old) {
      await fh.chmod(old.mode & 0o7777)
      if (process.getuid?.() === 0 && (old.uid !== 0 || old.gid !== 0)) await fh.chown(old.uid, old.gid)
    }
  })
  // A file that cannot be replaced (a bind mount: EBUSY) leaves nothing behind beside it either.
  await rename(tmp, file).catch(async (err: unknown) => {
    await unlink(tmp).catch(() => undefined)
    throw err
  })
  // From here on the file has its new content: a failure is not "nothing changed".
  await directory.sync(dir).catch((err: unknown) => {
    throw new NotDurableError(file, err)
  })
}

/**
 * The errors of link(2) that say the file system has no hard links (exFAT, FAT, some FUSE and
 * network file systems), not that this link failed: EPERM (FAT, exFAT, FUSE), EMLINK (a new file
 * cannot have too many links unless none are allowed), ENOTSUP/EOPNOTSUPP, ENOSYS.
 */
const NO_HARD_LINKS = new Set(['EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])

/**
 * Creates a file that must not exist yet, as writeFileAtomic writes one (a temporary file beside it,
 * fsync, then into place, then a directory fsync), but never over another: the temporary file is
 * hard-linked to the name, which fails with EEXIST when anything holds it (a file, a dangling link),
 * even one that appeared since the caller looked; then the temporary name is removed. Created 0644
 * (less the umask). A failure before the link leaves nothing; a NotDurableError, the file in place.
 *
 * On a file system without hard links (link(2) fails with one of NO_HARD_LINKS), `onNoHardLinks` is
 * called with that error and the temporary file is renamed to the name once an lstat finds nothing
 * there (EEXIST otherwise). The content stays atomic (a rename: a crash leaves no file or the whole
 * one, never an empty or a partial one, which would stop the next start-up); the price is the
 * window between the lstat and the rename, in which a file made at that name by another process
 * would be replaced. Within Meridian creates are serialised, so only an outside writer of that very
 * name, in those microseconds, could lose it (moveFileDurably takes the same window). Reserving
 * the name first (open 'wx', then renaming over the reservation) would close the window for others
 * but leave an empty zone file at the name on a crash, and still replace a file renamed over the
 * reservation meanwhile.
 */
export async function createFileAtomic(file: string, data: string | Buffer, onNoHardLinks?: (err: NodeJS.ErrnoException) => void): Promise<void> {
  const dir = path.dirname(file)
  const tmp = await writeTemp(file, data, 'wx', 0o644)
  let placed = false
  try {
    await link(tmp, file).catch(async (err: NodeJS.ErrnoException) => {
      if (!NO_HARD_LINKS.has(err.code ?? '')) throw err
      onNoHardLinks?.(err)
      if (await lstat(file).then(() => true, () => false)) throw Object.assign(new Error(`EEXIST: file already exists, ${file}`), { code: 'EEXIST' })
      await rename(tmp, file)
      placed = true
    })
  } finally {
    if (!placed) await unlink(tmp).catch(() => undefined)
  }
  await directory.sync(dir).catch((err: unknown) => {
    throw new NotDurableError(file, err)
  })
}

/**
 * Writes `data` to a new temporary file beside `file` (`.NAME.PID.MS.tmp`, TEMP_RE), made with
 * `flags` and `mode` and set up by `prepare` before the write, and fsyncs it; returns its path.
 * On a failure it is removed and the error thrown.
 */
async function writeTemp(file: string, data: string | Buffer, flags: 'w' | 'wx', mode: number, prepare?: (fh: FileHandle) => Promise<void>): Promise<string> {
  const tmp = path.join(path.dirname(file), tempName(path.basename(file), process.pid, tempStamp()))
  const fh = await open(tmp, flags, mode)
  try {
    await prepare?.(fh)
    await fh.writeFile(data)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fh.close()
  return tmp
}

/**
 * Moves a file within one file system, as a crash leaves it either here or there: a rename, then
 * an fsync of the directory it left and of the one it entered (and of that one's parent, which may
 * have just been made). Refuses (EEXIST) to replace a file at `to`. A NotDurableError after the
 * rename: the file has moved, the directories may not say so after a crash.
 */
export async function moveFileDurably(from: string, to: string): Promise<void> {
  if (await lstat(to).then(() => true, () => false)) throw Object.assign(new Error(`${to} exists already`), { code: 'EEXIST' })
  await rename(from, to)
  const dirs = [...new Set([path.dirname(to), path.dirname(path.dirname(to)), path.dirname(from)])]
  for (const dir of dirs) {
    await directory.sync(dir).catch((err: unknown) => {
      throw new NotDurableError(to, err)
    })
  }
}

/**
 * The rename is done, so the file has its new content, but the directory could not be synced: the
 * change may not survive a crash or power loss. Its `cause` is the error of the sync.
 */
export class NotDurableError extends Error {
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`${file} was replaced, but its directory could not be synced: ${(cause as Error).message}`, { cause })
    this.name = 'NotDurableError'
  }
}

/**
 * The directory fsync of writeFileAtomic, as a method of an object: the seam through which a test
 * makes it fail (`t.mock.method(directory, 'sync', ...)`), which no real file system does on demand.
 */
export const directory = {
  async sync(dir: string): Promise<void> {
    const dh = await open(dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
  },
}

/**
 * Removes the temporary files a writer killed mid-write left in `dir` (those of processes that no
 * longer run, and this process's own: called at start-up, before it writes any; in a container
 * every start may get the same pid); returns their names. A missing directory has none.
 */
export async function removeStaleTemps(dir: string, of?: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const removed: string[] = []
  for (const name of names) {
    const m = TEMP_RE.exec(name)
    if (!m || running(Number(m[2])) || (of !== undefined && !tempOf(name, m[1]!, of))) continue
    await unlink(path.join(dir, name)).then(
      () => removed.push(name),
      () => undefined,
    )
  }
  return removed
}

/**
 * As removeStaleTemps, beside the target of each symbolic link in `dir` (a zone file linked from a
 * config checkout is written through the link, its temporary file beside the target): only that
 * target's temporary files, never others of a directory that is not Meridian's.
 */
export async function removeStaleLinkedTemps(dir: string): Promise<{ dir: string; removed: string[] }[]> {
  const out: { dir: string; removed: string[] }[] = []
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const link = path.join(dir, name)
    const isLink = await lstat(link).then((s) => s.isSymbolicLink(), () => false)
    const target = isLink ? await realpath(link).catch(() => undefined) : undefined
    if (target === undefined) continue
    const removed = await removeStaleTemps(path.dirname(target), path.basename(target))
    if (removed.length > 0) out.push({ dir: path.dirname(target), removed })
  }
  return out
}

/** Whether another process with this pid runs (our own pid: no, see removeStaleTemps). */
function running(pid: number): boolean {
  if (pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
