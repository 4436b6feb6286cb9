/**
 * Weighted rendezvous hashing (highest random weight, Schindelhauer & Schomaker 2005): each client
 * network scores every region as -weight / ln(h), h uniform in (0,1) from a hash of (network, region);
 * the highest score wins. Shares follow the weights, a network keeps its region while nothing changes,
 * and when a region leaves only its own networks move.
 */

/**
 * cyrb53: a fast, well-mixed 53-bit string hash (public domain), of `a`, or of `${a}|${b}` when `b`
 * is given, without building that string (the selector hashes a pair per region on every miss).
 */
export function hash53(a: string, b?: string): number {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  if (b !== undefined) {
    h1 = Math.imul(h1 ^ 0x7c, 2654435761) // '|'
    h2 = Math.imul(h2 ^ 0x7c, 1597334677)
    for (let i = 0; i < b.length; i++) {
      const c = b.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 2654435761)
      h2 = Math.imul(h2 ^ c, 1597334677)
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/** The rendezvous score of `key` (a region) for `bucket` (a client network) at `weight`. */
export function rendezvousScore(bucket: string, key: string, weight: number): number {
  const u = (hash53(bucket, key) + 0.5) / 2 ** 53 // in (0, 1)
  return -weight / Math.log(u)
}
