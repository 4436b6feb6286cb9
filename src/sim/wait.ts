/**
 * Polls a condition until it holds or a deadline passes: for waiting on something that has no
 * event of its own (a pool's probe interval, a remote health state) without a fixed sleep.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  opts: { timeoutMs?: number; everyMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000
  const everyMs = opts.everyMs ?? 10
  const deadline = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== null && v !== false) return v as NonNullable<T>
      last = v
    } catch (err) {
      last = err
    }
    if (performance.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'} (last: ${detail})`)
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
