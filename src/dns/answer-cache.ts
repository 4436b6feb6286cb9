/**
 * The answer cache and the zero-parse hot path (issue 5).
 *
 * The common query (a name, type and client whose answer was built before, under the same zone set
 * and its service's health generations) is answered without dns2 Packet objects: `lookup()` reads the header, the
 * question and the OPT/ECS option straight from the buffer, finds the encoded answer, copies it,
 * patches the ID, the RD bit, the question's octets (its case), draws the GSLB records from
 * their pools (rotation), appends the ECS option with this client's scope, and returns it.
 * Anything it is not sure of returns null, and the full path (parseQuery, respond, dns2) decides.
 *
 * Keys. An answer is cached under exactly what it depended on (the selector says so in
 * `Selection.dependsOn`), so one entry serves every client that would get the same answer:
 *
 *   base = lowercased question name + qtype + EDNS flags (none | EDNS | EDNS+DO)
 *   static records, failover, fallbacks    base                      one entry for everyone
 *   weighted                               base + bucket             the client's /24 or /56
 *   geo, geo-latency                       base + location           the GeoIP point (a country, a city)
 *     ... when the choice also hashed      base + location + bucket  (regions tied; no location known)
 * A client-dependent base carries a marker saying which key comes next; a location entry may be a
 * marker saying "split by bucket". The client's location and bucket come from client records keyed
 * by the ECS network (family, source prefix, address) or the resolver address, so a hit does no
 * GeoIP lookup, and a miss hands the record's location to the responder (`locateLast`).
 *
 * No string is made or hashed per query: parse() hashes the base's octets as it reads them and finds
 * the base in a table (octets compared); every location and bucket has a numeric id, and the LRU
 * key is the number `base key + part` (part: 0, a location id, a bucket id, or a location-and-bucket
 * id, all below 2^22). Base keys come from `BaseKeys` so that LRU keys stay V8 small integers (Smis:
 * 32 bits in node's own 64-bit builds, SMI_BITS): a client-dependent base takes a slot of 2^22 keys
 * of its own (1,024 slots), a base that only ever keys part 0 (static records, NODATA, failover) one
 * key of a slot shared with others, so names that are queried once do not use up the slots. Past
 * the slots keys are exact doubles: answers the same, each lookup slower (a heap number per key).
 * Keys are never reused while an entry could hold them: the base table is emptied when full,
 * keeping the bases that hold a slot (the others' entries are orphaned, and the LRU ages them out),
 * and when an id space runs out everything is emptied at once.
 *
 * Validity. Every entry records the zone set object it was built under and, for a GSLB answer, its
 * service's own state and latency generations; anything else is a miss (no stale answer after a
 * change). When the health generation moves, the cache compares the checks that moved (the health
 * source's `movedSince` list; every check its zone set's GSLB services read when there is none)
 * with what it last saw (`HealthIndex`). `stateGeneration` moves on state and membership changes:
 * each service that reads a check whose state changed moves its own state generation, which ends
 * the answers of those services only (static answers read no health and outlive it). `generation`
 * also moves when a check's EWMA moves more than max(2 ms, 25%) from the value it last published
 * (health/poller.ts), and that check's record then carries the new generation as its
 * `latencyGen`: the cache moves the latency generation of each geo-latency service
 * (the policy that reads latency) that reads a check that moved. That ends those services' entries
 * only, each after its own share of the latency grace (`latencyGraceMs`, inGrace()), so the
 * rebuilds of one move spread out instead of all missing at once. Smaller moves keep the entries,
 * and rightly: the selector steers by the EWMA a generation published (`publishedMs`), not by the
 * last round's, so until a check's `latencyGen` moves every answer built from it is the one the
 * selector would build now (even for a region at the edge of the tolerance window).
 *
 * Answers up to what TCP carries are cached, and a hit is served only to a client that takes it
 * whole: its length with this client's ECS option within the client's limit (TCP: 65,535 octets;
 * UDP: 512 without EDNS, else its payload size capped by ours), the full path's rule. A client with
 * a smaller limit misses, and the full path sends it the truncated reply (replyLimit(), encode.ts).
 * NXDOMAIN is not cached (random names would only evict useful entries) but assembled from a
 * per-zone SOA template (`nxReply()`, no dns2 encoder): on the hot path by `nxdomain()`, for a name
 * the zone set's name index does not hold, and for the full path's answers by `negative()`.
 */
import { isIP } from 'node:net'
import dns2 from 'dns2'
import { LRUCache } from 'lru-cache'
import type { ServedZone, ServedZoneSet } from '../model/types.js'
import { RRTYPE, type RR } from '../model/types.js'
import type { HealthGenerations } from '../health/poller.js'
import type { ClientLocation, Service, VipHealth } from '../model/gslb.js'
import { countedQtype, type Tally } from '../metrics/index.js'
import { drawStart, scopeOf, type Dependence } from '../select/select.js'
import { ipv4Number } from '../model/address.js'
import { locateRaw, type GeoLookup } from './client.js'
import { encodeResponse, encodeUncompressed, leastMessageSize, MAX_TCP_MESSAGE, replyLimit, writeOpt } from './encode.js'
import type { Outcome } from './responder.js'
import { COOKIE_OPTION, cookieProblem, ECS_OPTION, ecsDataLength, ecsProblem, NSID_OPTION, OPT_TYPE, readEcs, skipName, type Query } from './wire.js'

const { Packet } = dns2

/** The largest ECS option: code, length, family, prefixes, 16 address octets. */
const MAX_ECS_OPTION = 4 + 4 + 16
/** The largest answer cached (with the largest ECS option): one a TCP client can take whole. */
const CACHEABLE_SIZE = MAX_TCP_MESSAGE
/** Octets past which assemble() copies with one TypedArray#set instead of a loop. */
const LONG_COPY = 256
/** The fractional part of the golden ratio: k * GOLDEN mod 1 spreads evenly over [0, 1). */
const GOLDEN = 0.6180339887498949

export interface AnswerCacheOptions {
  /** Most entries (answers and markers). 0 turns the cache off. */
  maxEntries: number
  /** Most octets of cached answers (plus a fixed overhead per entry). */
  maxBytes: number
  /**
   * For tests: smaller id spaces than the defaults (locations and buckets 2^21, bases 2^30), so that
   * running out of one, which empties the cache, can be made to happen (larger values are capped);
   * and `baseTable`, how many bases the base table holds before it is emptied (default 50,000).
   */
  idSpaces?: { parts: number; bases: number; baseTable?: number }
  /**
   * How long a geo-latency answer may still be served after a latency move of a check its service
   * reads superseded the service's latency generation it was built under (milliseconds; 0: rebuilt
   * at its next query, as state changes always are). Each entry draws its own deadline inside the grace, so the rebuilds spread out
   * instead of all coming due at once. Default LATENCY_GRACE_MS.
   */
  latencyGraceMs?: number
}

/**
 * The default latency grace (`--latency-grace`). A latency move ends every geo-latency entry of the
 * services that read the check that moved (in a zone where every service reads every region, all of
 * them); on a busy server the misses that follow all come at once (one full path each, ~10x a hit): measured,
 * one move at the start of a half-load run left 1,763 answers over 1 ms (up to 7 ms) in the next 50 ms
 * (docs/benchmarks.md, session 9). The EWMA behind a move takes several check intervals to get
 * there, so answers following it up to two seconds later change nothing a client could see.
 */
export const LATENCY_GRACE_MS = 2000

export const DEFAULT_ANSWER_CACHE: AnswerCacheOptions = { maxEntries: 100_000, maxBytes: 64 * 1024 * 1024, latencyGraceMs: LATENCY_GRACE_MS }

/** Bytes counted per entry beyond its buffers: key, object, LRU slots (measured: docs/benchmarks.md). */
const ENTRY_OVERHEAD = 240

/** Where counts of cached answers go (the Metrics class provides these): plain `n++` tallies. */
export interface CacheMetrics {
  queryTally(zone: string, qtype: number, rcode: number): Tally
  answerTally(zone: string, service: string, region: string): Tally
  readonly hitTally: Tally
  readonly missTally: Tally
  readonly nxdomainTally: Tally
  /** Hits answered within the latency grace (counted in the hits too). */
  readonly graceTally: Tally
}

const NO_TALLY: Tally = { n: 0 }

/**
 * A cached answer. Entries and markers are instances of two classes, so every entry has one hidden
 * class and the hit path's loads stay monomorphic: as object literals and `{ ...entry }` copies
 * (their fields generalized by the first latency moves), a server's entries took more maps than
 * V8's inline caches hold, and every load on a hit went through the megamorphic stub cache for the
 * rest of its life (docs/benchmarks.md, session 10).
 */
class Entry {
  readonly marker = false as const
  readonly set: ServedZoneSet
  /** The service's own latency generation when built (HealthIndex.lgens[svc]); 0 when svc is -1. */
  readonly lgen: number
  /** The service's own state generation when built (HealthIndex.gens[svc]); 0 when svc is -1. */
  readonly sgen: number
  /** The GSLB service that answered, as its index in the zone set's HealthIndex, or -1 (no health read). */
  readonly svc: number
  /**
   * Built by a geo-latency service: measured latency took part, so a latency move of a check its
   * service reads (`lgen`) ends it after its `grace` (at once when one changed state: `sgen`).
   */
  readonly latency: boolean
  /**
   * This entry's share of the latency grace: whole ms in [0, latencyGraceMs), from the golden-ratio
   * sequence (build()). Whole, so the field stays a small integer (a double in some entries and
   * not in others would change their hidden class).
   */
  readonly grace: number
  /** Header (counts final), question, and the answer records before the drawn ones (CNAMEs). */
  readonly head: Buffer
  /** Every record the answer draws from, each `blockSize` octets (owner compressed, fixed size). */
  readonly blocks: Buffer
  readonly blockSize: number
  /** Per group: first block, pool size, how many to take. */
  readonly groups: Int32Array
  /** Authority, additional, and the OPT record without options (its RDLENGTH last) when EDNS. */
  readonly tail: Buffer
  readonly length: number
  readonly dep: Dependence
  readonly queries: Tally
  readonly answers: Tally

  constructor(f: EntryFields) {
    this.set = f.set
    this.lgen = f.lgen
    this.sgen = f.sgen
    this.svc = f.svc
    this.latency = f.latency
    this.grace = f.grace
    this.head = f.head
    this.blocks = f.blocks
    this.blockSize = f.blockSize
    this.groups = f.groups
    this.tail = f.tail
    this.length = f.length
    this.dep = f.dep
    this.queries = f.queries
    this.answers = f.answers
  }

  /** The same octets under new service generations (they depend on the zone set and the content only). */
  at(lgen: number, sgen: number): Entry {
    return new Entry({ ...this, lgen, sgen })
  }
}

type EntryFields = Omit<Entry, 'marker' | 'at'>

/**
 * Says which key comes next for a client-dependent base (see the header); `latency` is there so
 * valid() reads both kinds alike. A base's own marker follows the policy (the zone set) and reads no
 * health (svc -1); a location's marker saying "split by bucket" follows the service's selection.
 */
class Marker {
  readonly marker = true as const
  readonly latency = false as const
  constructor(
    readonly set: ServedZoneSet,
    readonly svc: number,
    readonly sgen: number,
    readonly next: 'bucket' | 'location',
  ) {}
}

/**
 * What a zone set's HealthIndex is built on (readersSteps(), or prepareNext() ahead): its services
 * and the checks each reads.
 */
interface Readers {
  readonly set: ServedZoneSet
  /** Service indexes (the set's services are its own objects). */
  readonly services: Map<Service, number>
  /** Check indexes by key. */
  readonly keyIndex: Map<string, number>
  /** The check keys read, each one's readers (service indexes) and geo-latency readers. */
  readonly keys: string[]
  readonly readers: number[][]
  readonly latencyReaders: number[][]
}

/**
 * Per zone set: the checks its GSLB services read, and which services read each, so that a state
 * change ends only the answers of the services it touches; each check's state and its
 * `latencyGen` (-1: none) when last compared.
 */
interface HealthIndex extends Readers {
  readonly states: Int8Array
  readonly lats: Float64Array
  /** Per service: its own state generation, moved when a check it reads changes state. */
  readonly gens: Int32Array
  /** Per geo-latency service: its own latency generation, moved when a check it reads publishes a new latency. */
  readonly lgens: Int32Array
  /** Per service: its "split by bucket" marker under the current generation. */
  readonly markers: (Marker | undefined)[]
  /** The health generation and state generation last compared at. */
  seenHgen: number
  seenSgen: number
}

/**
 * What the cache compares to see a check's latency move: its record's `latencyGen`; -1 with no
 * record (no latency to read); the health generation itself for a record without one (a health
 * source that does not say which check moved: every generation move counts as a move of it).
 */
function latencyOf(h: VipHealth | undefined, g: HealthGenerations): number {
  return h === undefined ? -1 : (h.latencyGen ?? g.generation)
}

/** A check's state as a small integer: unknown (no record yet counts as unknown, as in the selector), up, down. */
function stateCode(h: VipHealth | undefined): number {
  return h?.state === 'up' ? 2 : h?.state === 'down' ? 3 : 1
}

/** A base key (name, type, EDNS flags) seen in an answer: its octets, id and marker. */
interface Base {
  readonly octets: Buffer
  /** Its octets' hash (parse()): where the base table holds it. */
  readonly hash: number
  /** Names the base in `built`'s keys. */
  readonly id: number
  /** LRU keys of this base are `key + part` (BaseKeys); part is always 0 unless `parts`. */
  key: number
  /** Whether `key` starts a slot of its own (client-dependent answers key parts above 0). */
  parts: boolean
  marker: Marker | undefined
  /** The next base with the same hash. */
  next: Base | undefined
}

/**
 * How wide V8's small integers (Smis, kept unboxed) are in this node: 32 bits on a 64-bit build
 * without pointer compression (node's own builds), 31 bits otherwise. Were this wrong, keys would
 * only be slower, never wrong (a test checks it against V8).
 */
export const SMI_BITS = smiBits()

function smiBits(): 31 | 32 {
  const v = process.config.variables as unknown as Record<string, unknown>
  const wide = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64'].includes(process.arch)
  return wide && !v.v8_enable_pointer_compression && !v.v8_enable_31bit_smis_on_64bit_arch ? 32 : 31
}

/**
 * LRU key prefixes for bases, in slots of `partSpace` keys that tile the Smi range: a Map keyed by
 * heap numbers boxes every key it is given (measured in-process, 10 interleaved runs: a hit's lookup
 * 0.69 against 0.60 µs, bench/handler-profile.mjs --bases 1024). A client-dependent
 * base gets a slot of its own (its keys: prefix + part). A base that only keys part 0 gets one key
 * of a slot shared by such bases, up to `partSpace` of them per slot. When the slots run out,
 * prefixes go on as exact doubles: above the Smi range for own slots, below it for single keys.
 * Nothing is handed out twice until reset().
 */
export class BaseKeys {
  /** How many slots fit the Smi range (1,024 with 32-bit Smis and the default 2^22 keys per slot). */
  readonly slots: number
  private readonly min: number
  private readonly end: number
  private nextSlot = 0
  /** The slot single keys are drawn from, and how many it has given (0: none yet). */
  private shared = 0
  private sharedUsed = 0
  private overflow = 0
  private singleOverflow = 0

  constructor(
    private readonly partSpace: number,
    smiBits: number = SMI_BITS,
  ) {
    this.min = -(2 ** (smiBits - 1))
    this.end = 2 ** (smiBits - 1)
    this.slots = Math.floor((this.end - this.min) / partSpace)
  }

  /**
   * A prefix whose keys `prefix + part`, 0 <= part < partSpace, are this base's alone. Prefixes in
   * the range are made int32s (`| 0`, exact there): V8 boxes a double result even when it is whole.
   */
  ownSlot(): number {
    if (this.nextSlot < this.slots) return (this.min + this.nextSlot++ * this.partSpace) | 0
    return this.end + this.overflow++ * this.partSpace
  }

  /** One key for a base that never keys a part above 0. */
  single(): number {
    if (this.sharedUsed === 0 || this.sharedUsed >= this.partSpace) {
      if (this.nextSlot >= this.slots) return this.min - 1 - this.singleOverflow++
      this.shared = (this.min + this.nextSlot++ * this.partSpace) | 0
      this.sharedUsed = 0
    }
    return this.shared + this.sharedUsed++
  }

  /** Whether `prefix` (from ownSlot) is in the Smi range. */
  isSmall(prefix: number): boolean {
    return prefix < this.end
  }

  /** Starts again: only when no entry holds a key handed out before (the LRU is empty). */
  reset(): void {
    this.nextSlot = this.shared = this.sharedUsed = this.overflow = this.singleOverflow = 0
  }
}

/**
 * Which names a zone set has, by their octets, so that a NXDOMAIN is answered on the hot path
 * (`nxdomain()`): every zone's origin, and every node name (empty non-terminals and services
 * included: `Zone.nodes`) as lowercase labels without the root label, all in one buffer. Names
 * the hot path never reads (a label holding '.', '\\' or a non-ASCII octet) are left out: no query
 * it parses can name them. Built once per zone set, on its first NXDOMAIN candidate.
 */
interface NameIndex {
  readonly set: ServedZoneSet
  /** The zones, longest origin first, with their origin's octets and their NXDOMAIN tallies by qtype (countedQtype). */
  readonly zones: { readonly zone: ServedZone; readonly origin: Buffer; readonly tallies: Map<number, Tally> }[]
  readonly octets: Buffer
  /** Name n's octets are `octets[offsets[n], offsets[n + 1])`; its zone is `zones[zoneOf[n]]`; `next[n]` is the next name with the same hash (or -1). */
  readonly offsets: Int32Array
  readonly zoneOf: Int32Array
  readonly next: Int32Array
  /** The first name by the hash of its octets. */
  readonly byHash: Map<number, number>
}

/** Query types the full path refuses or rejects whatever the name (responder.ts): never a hot-path NXDOMAIN. */
const NOT_NX_TYPES = new Set([41, 249, 250, 251, 252, 253, 254])

/**
 * Client records: where a client is, as far as cached answers care, REC ints each in one Int32Array
 * (a hit reads one record and one table slot, not a Map entry and an object): the key parts of its
 * location (1 + location id), its bucket, and this location and bucket together, then its GeoIP
 * and bucket prefixes, packed.
 */
const REC = 4
/** What identifies the client of a parsed message (AnswerCache.clientKind). */
const CLIENT_ECS4 = 0
const CLIENT_PEER4 = 1
const CLIENT_ECS6 = 2
const CLIENT_TEXT = 3
/** Where a slot holds its record in the table of each numeric client kind (pairs, pairs, quads). */
const SLOT_RECORD = [1, 1, 2] as const
const R_LOC = 0
const R_BUCKET = 1
const R_BOTH = 2
const R_PREFIXES = 3

/** Key parts below 2^21 are locations (1 + id), from 2^21 buckets and location+bucket pairs (shared ids). */
const ID_SPACE = 2 ** 21
/** Base ids stay below this, so overflow keys (BaseKeys: at most 2^31 + count * 2 * ID_SPACE + part, one count per base) are exact integers (< 2^53). */
const MAX_BASE_ID = 2 ** 30
const MAX_BASES = 50_000
/** Options for lru-cache's get, shared: its default (`= {}`) would be a new object per call (get writes `status` into it). */
const GET: LRUCache.GetOptions<number, Entry | Marker, unknown> = {}

export class AnswerCache {
  private readonly lru: LRUCache<number, Entry | Marker>
  /**
   * Client records by ECS network or resolver address, emptied when full (cheap to refill): IPv4
   * ECS networks up to /24 by their small integer, and IPv4 resolver addresses (queries without
   * ECS) by their 32 bits, each in an open-addressing table of (key, record + 1) pairs, 0 empty;
   * IPv6 ECS networks up to /56 by two integers (address octets 0-3; source prefix and octets 4-6)
   * in a table of (key, key, record + 1, unused) quads (`tables`, by client kind); the rest (longer prefixes, IPv6 resolvers) by text in a Map. `recLoc` keeps each
   * record's location (no zone default applied) for the full path, so a miss does no second GeoIP
   * lookup. A table's pages are touched only once a client of its kind comes (`tablesUsed`).
   */
  private readonly rec: Int32Array
  private readonly recLoc: ClientLocation[] = []
  private recCount = 0
  /** The tables by client kind: ECS4, PEER4 (pairs), ECS6 (quads). */
  private readonly tables: readonly Int32Array[]
  /** Which tables hold records (bit 1 << kind), so clearClients() fills only those. */
  private tablesUsed = 0
  private readonly slotShift: number
  private readonly byText = new Map<string, number>()
  private readonly maxClients: number
  /** Bases by the hash of their octets (chained on collision); emptied when full. */
  private readonly bases = new Map<number, Base>()
  private baseCount = 0
  private nextBaseId = 0
  /** LRU key prefixes for bases; the bases holding a slot of their own in the Smi range, kept when the table is emptied. */
  private readonly baseKeys: BaseKeys
  private readonly slotted: Base[] = []
  private readonly maxBases: number
  /** Location ids by GeoIP point, bucket ids by bucket; pairs draw from the bucket ids. */
  private readonly locIds = new Map<string, number>()
  private readonly bucketIds = new Map<string, number>()
  private nextLocId = 0
  private nextBucketId = 0
  /** Entries by base id and content (the records drawn from, the rcode, the region, the dependence). */
  private readonly built: LRUCache<string, Entry>
  private readonly soaTemplates = new WeakMap<RR, Buffer>()
  /** The current zone set's HealthIndex (healthIndex()), and its per-service generations. */
  private hidx: HealthIndex | undefined
  private svcGens: Int32Array = new Int32Array(0)
  private svcLgens: Int32Array = new Int32Array(0)
  /** The last service generation given (any index): each one is given once. */
  private svcGenSeq = 0
  /** The two markers of the current zone set that read no health (marker()). */
  private markers: { bucket: Marker; location: Marker } | undefined
  private readonly scratch = Buffer.alloc(300)
  private readonly hits: Tally
  private readonly misses: Tally
  private readonly nxdomains: Tally
  private readonly graceHits: Tally
  private names: NameIndex | undefined
  /** The indexes prepareNext() made for a set not yet served, each taken when that set first needs it (madeAhead()). */
  private ahead: Ahead | undefined
  /** The latency grace in ms (0: none). */
  private readonly graceMs: number
  /** The golden-ratio sequence's next index (from 1: the first entry does not get a share of 0). */
  private graceSeq = 1
  /** When each superseded service latency generation was superseded (ms, `now()`'s clock), for the grace; in the order the cache saw them (a listed move's time may be earlier than one noted before it). */
  private readonly superseded = new Map<number, number>()
  /** Key parts below `idSpace` are locations, from it buckets; LRU keys are `base key + part`. */
  private readonly idSpace: number
  private readonly partSpace: number
  private readonly maxBaseId: number
  private flushCount = 0

  // What the last parse found (lookup() and insert() run back to back, synchronously).
  private parsed = false
  /** The base the last parse found, or null; its hash and octets (in `scratch`) for insert(). */
  private base: Base | null = null
  private hash = 0
  /** The hash (`fnv()`) of the name's octets alone, for the name index (nxdomain()). */
  private nameHash = 0
  private keyLength = 0
  private qEnd = 0
  /** The largest reply the last parsed message's client takes whole (replyLimit). */
  private limit = 512
  /** The last lookup found a current entry too long for its client (fits()). */
  private cut = false
  private ecsOff = -1
  private ecsLen = 0
  /**
   * The client: an IPv4 ECS network up to /24 or an IPv4 resolver address as a number, an IPv6 ECS
   * network up to /56 as two (`clientNum2`), no string made or hashed; else text (longer IPv6
   * prefixes, IPv6 resolvers). `clientKind` says which.
   */
  private clientKind = CLIENT_TEXT
  /** Whether the client key below is the last parsed message's (keyClient()). */
  private keyed = false
  private clientNum = 0
  /** An IPv6 ECS network's second key integer: source prefix and address octets 4-6. */
  private clientNum2 = 0
  private clientText = ''
  private lastMsg: Buffer | null = null
  private lastPeer = ''

  /**
   * Where the client of the message the last lookup() parsed is, no zone default applied, or
   * undefined when that message was not one the hot path reads. The full path's responder calls it
   * (only for GSLB answers), so a miss locates its client once, from the client records.
   */
  readonly locateLast = (): ClientLocation | undefined => (this.parsed ? this.recLoc[this.client()] : undefined)

  constructor(
    private readonly zones: () => ServedZoneSet,
    private readonly health: () => HealthGenerations,
    private readonly geo: GeoLookup | undefined,
    private readonly rand: () => number,
    private readonly metrics: CacheMetrics | undefined,
    private readonly serverUdpSize: number,
    options: AnswerCacheOptions = DEFAULT_ANSWER_CACHE,
    private readonly now: () => number = () => performance.now(),
    /** A check's current health (the selector's input), compared when the health generation moves. */
    private readonly vipHealth: (checkKey: string) => VipHealth | undefined = () => undefined,
    /** The checks that moved after a generation, when the health source knows (GslbContext.movedSince); else every check is compared. */
    private readonly movedSince?: (generation: number, visit: (checkKey: string, at: number) => void) => boolean,
  ) {
    this.graceMs = Math.max(0, options.latencyGraceMs ?? LATENCY_GRACE_MS)
    this.idSpace = Math.max(4, Math.min(ID_SPACE, options.idSpaces?.parts ?? ID_SPACE))
    this.partSpace = 2 * this.idSpace
    this.maxBaseId = Math.max(1, Math.min(MAX_BASE_ID, options.idSpaces?.bases ?? MAX_BASE_ID))
    this.maxBases = Math.max(1, options.idSpaces?.baseTable ?? MAX_BASES)
    this.baseKeys = new BaseKeys(this.partSpace)
    this.hits = metrics?.hitTally ?? { n: 0 }
    this.misses = metrics?.missTally ?? { n: 0 }
    this.nxdomains = metrics?.nxdomainTally ?? { n: 0 }
    this.graceHits = metrics?.graceTally ?? { n: 0 }
    this.lru = new LRUCache<number, Entry | Marker>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (e) => (e.marker ? ENTRY_OVERHEAD : entrySize(e)),
    })
    this.maxClients = Math.max(1000, Math.min(options.maxEntries, 100_000))
    this.rec = new Int32Array(this.maxClients * REC)
    // A power of two at least twice the records: probes stay short.
    const bits = Math.ceil(Math.log2(this.maxClients * 2))
    this.tables = [new Int32Array(2 << bits), new Int32Array(2 << bits), new Int32Array(4 << bits)]
    this.slotShift = 32 - bits
    // Bounded in octets too (a quarter of the cache's): entries of large answers (up to 64 KiB each)
    // that the LRU above has evicted would otherwise stay here, 20,000 of them.
    this.built = new LRUCache<string, Entry>({
      max: Math.max(1000, Math.min(options.maxEntries, 20_000)),
      maxSize: Math.max(1, Math.floor(options.maxBytes / 4)),
      sizeCalculation: entrySize,
    })
  }

  get size(): number {
    return this.lru.size
  }

  get bytes(): number {
    return this.lru.calculatedSize
  }

  /**
   * Builds what the cache reads of the current zone set (the services' health index, the names for
   * NXDOMAIN) now rather than at the first query after it came: a DNS worker does it before it
   * acknowledges a new set, so the first half of a staggered set answers at full speed before the
   * second half stops to read it (the index of 5,000 services took its first query 33-84 ms).
   */
  prepare(): void {
    const set = this.zones()
    this.generations(set)
    if (this.names === undefined || this.names.set !== set) this.names = this.nameIndex(set)
  }

  /**
   * Makes ahead the indexes a zone set not yet served will need (the checks its services read, its
   * names for NXDOMAIN), in steps of about a millisecond with `turn()` awaited between them (a
   * turn of the event loop: DNS is answered meanwhile), so its first queries do not make them in
   * one long turn (tens of ms with thousands of services). Kept for that set only: the next
   * prepareNext() replaces them, and a set served without them makes its own at once.
   */
  async prepareNext(set: ServedZoneSet, turn: () => Promise<unknown>): Promise<void> {
    this.ahead = undefined
    const readers = await stepThrough(readersSteps(set), turn)
    const names = await stepThrough(nameIndexSteps(set), turn)
    this.ahead = { set, readers, names }
  }

  /**
   * What prepareNext() made for `set`, taken (undefined: nothing; the caller makes it now). What it
   * made for another set is kept if that set is newer (it comes while an older one is indexed for
   * the first time), else dropped: sets are swapped in generation order, so one no newer will never
   * be served (built and then refused, a write that failed).
   */
  private madeAhead<K extends 'readers' | 'names'>(set: ServedZoneSet, part: K): Ahead[K] {
    const a = this.ahead
    if (a === undefined) return undefined
    if (a.set !== set) {
      if (a.set.generation <= set.generation) this.ahead = undefined
      return undefined
    }
    const made = a[part]
    a[part] = undefined
    if (a.readers === undefined && a.names === undefined) this.ahead = undefined
    return made
  }

  /** The NameIndex of `set`: the one made ahead for it, or made now. */
  private nameIndex(set: ServedZoneSet): NameIndex {
    return this.madeAhead(set, 'names') ?? runSteps(nameIndexSteps(set))
  }

  /** Times the cache was emptied because an id space ran out. */
  get flushes(): number {
    return this.flushCount
  }

  /**
   * The cached reply to `msg`, or null (not cached, not a message this path reads, or longer than
   * this client takes: the full path truncates it). `tcp`: it came over TCP (a 65,535-octet limit).
   */
  lookup(msg: Buffer, peer: string, tcp = false): Buffer | null {
    if (!this.parse(msg, peer, tcp)) return null
    const b = this.base
    if (b === null) {
      // A name never answered before may be one the zone does not have: NXDOMAIN from here.
      const nx = this.nxdomain(msg)
      if (nx !== null) this.nxdomains.n++
      else this.misses.n++
      return nx
    }
    const set = this.zones()
    this.generations(set)
    const key = b.key
    let e = this.valid(b.marker, set) ?? this.valid(this.lru.get(key, GET), set)
    let client = -1
    if (e?.marker) {
      client = this.client() * REC
      if (client < 0) return null
      const rec = this.rec
      if (e.next === 'bucket') {
        e = this.valid(this.lru.get(key + rec[client + R_BUCKET]!, GET), set)
      } else {
        e = this.valid(this.lru.get(key + rec[client + R_LOC]!, GET), set)
        if (e?.marker) e = this.valid(this.lru.get(key + rec[client + R_BOTH]!, GET), set)
      }
    }
    if (!e || e.marker || !this.fits(e)) {
      // Cached but longer than this client takes: insert() has nothing to add (the full path truncates).
      this.cut = e !== undefined && !e.marker
      this.misses.n++
      return null
    }
    this.hits.n++
    e.queries.n++
    e.answers.n++
    return this.assemble(e, msg, client)
  }

  /** Whether `e`'s reply, with the client's ECS option, fits what the client takes whole. */
  private fits(e: Entry): boolean {
    return e.length + this.ecsExtra() <= this.limit
  }

  /** The octets the client's ECS option adds to a cached reply (option code, length and data), 0 without one. */
  private ecsExtra(): number {
    return this.ecsOff >= 0 ? 4 + this.ecsLen : 0
  }

  /** `e` if it may still be served: built under this zone set, its service's state unchanged since, and (geo-latency) its service's latency generation or grace. */
  private valid(e: Entry | Marker | undefined, set: ServedZoneSet): Entry | Marker | undefined {
    return e !== undefined && e.set === set && (e.svc < 0 || e.sgen === this.svcGens[e.svc]) && (!e.latency || e.lgen === this.svcLgens[e.svc] || this.inGrace(e)) ? e : undefined
  }

  /**
   * A geo-latency entry whose service's latency generation a latency move superseded (its state
   * generation is still current): true while its own deadline inside the grace has not passed.
   * Not on the hot path of a current entry: only after a move.
   */
  private inGrace(e: Entry): boolean {
    const since = this.superseded.get(e.lgen)
    if (since === undefined || this.now() - since >= e.grace) return false
    this.graceHits.n++
    return true
  }

  /**
   * Brings the services' own generations up to date for `set` (the current zone set) when the
   * health generation moved. Read by lookup() and by insert(): the first lookup of a new name
   * returns before it reads them, and the entry insert() builds must be made under current ones.
   */
  private generations(set: ServedZoneSet): void {
    const g = this.health()
    const idx = this.hidx
    if (idx === undefined || idx.set !== set) this.indexHealth(set, g)
    else if (idx.seenHgen !== g.generation) this.healthMoved(idx, g)
  }

  /** Builds the HealthIndex of a new zone set: its services, the checks they read (made ahead by prepareNext() when it could), their states and latency generations now. */
  private indexHealth(set: ServedZoneSet, g: HealthGenerations): void {
    const { services, keyIndex, keys, readers, latencyReaders } = this.madeAhead(set, 'readers') ?? runSteps(readersSteps(set))
    const states = new Int8Array(keys.length)
    const lats = new Float64Array(keys.length)
    for (let k = 0; k < keys.length; k++) {
      const h = this.vipHealth(keys[k]!)
      states[k] = stateCode(h)
      lats[k] = latencyOf(h, g)
    }
    // Generations are drawn from one sequence for all indexes: were a zone set object current again
    // after another, no entry built under its old index could match its new one. Latency
    // generations are each service's own from the start: the grace notes when each is superseded,
    // and one shared by two services would be noted again when the second moves, giving the
    // first's old entries a second grace.
    const n = services.size
    const gens = new Int32Array(n).fill(++this.svcGenSeq)
    const lgens = new Int32Array(n)
    for (let i = 0; i < n; i++) lgens[i] = ++this.svcGenSeq
    this.hidx = { set, services, keyIndex, keys, readers, latencyReaders, states, lats, gens, lgens, markers: new Array<Marker | undefined>(n).fill(undefined), seenHgen: g.generation, seenSgen: g.stateGeneration }
    this.svcGens = gens
    this.svcLgens = lgens
  }

  /**
   * The health generation moved: every service reading a check whose state changed moves its own
   * state generation (when the state generation moved too), and every geo-latency service reading
   * a check that published a new latency (`latencyGen`) moves its latency generation, the old one
   * superseded from when the move was made (listed with its time), else from now (for the grace). The checks compared are those the health source says
   * moved (movedSince), else every check.
   */
  private healthMoved(idx: HealthIndex, g: HealthGenerations): void {
    const states = idx.seenSgen !== g.stateGeneration
    const since = idx.seenHgen
    idx.seenHgen = g.generation
    idx.seenSgen = g.stateGeneration
    const now = this.graceMs > 0 ? this.now() : 0
    // A listed move is superseded from when it was made (its earliest listing comes first), not
    // from this first query after it: a name asked rarely would be served its old answer for a
    // whole grace after a quiet spell, however long ago the move was.
    const listed = this.movedSince?.(since, (key, at) => {
      const k = idx.keyIndex.get(key)
      if (k !== undefined) this.compareCheck(idx, k, states, g, at < now ? at : now)
    })
    if (!listed) for (let k = 0; k < idx.keys.length; k++) this.compareCheck(idx, k, states, g, now)
    // Generations superseded longer ago than the grace hold no entry that may still be served:
    // dropped in the order the cache saw them; one noted out of time order may outstay its grace
    // here a little (inGrace() reads its time, so it serves nothing past it).
    for (const [gen, at] of this.superseded) {
      if (now - at < this.graceMs) break
      this.superseded.delete(gen)
    }
  }

  /** healthMoved()'s comparison of check `k`: its state (when `states`) and its latencyGen; `now` for the grace. */
  private compareCheck(idx: HealthIndex, k: number, states: boolean, g: HealthGenerations, now: number): void {
    const h = this.vipHealth(idx.keys[k]!)
    if (states) {
      const code = stateCode(h)
      if (code !== idx.states[k]) {
        idx.states[k] = code
        for (const svc of idx.readers[k]!) idx.gens[svc] = ++this.svcGenSeq
      }
    }
    const lat = latencyOf(h, g)
    if (lat === idx.lats[k]) return
    idx.lats[k] = lat
    for (const svc of idx.latencyReaders[k]!) {
      if (this.graceMs > 0) this.superseded.set(idx.lgens[svc]!, now)
      idx.lgens[svc] = ++this.svcGenSeq
    }
  }

  /**
   * Caches the answer `out` to `q`, which the last lookup() parsed and missed; returns the reply
   * drawn from the new entry, or null when the answer is not cacheable (the caller encodes it).
   */
  insert(q: Query, out: Outcome): Buffer | null {
    if (!this.parsed || this.cut || (out.kind !== 'answer' && out.kind !== 'nodata') || !out.zone || q.oddName) return null
    const set = this.zones()
    this.generations(set)
    const sel = out.selection
    // A GSLB answer's service (whose health it read), its index and own state generation.
    const service = sel && out.service ? out.zone.services.get(out.service) : undefined
    const policy = service?.policy
    let svc = -1
    if (sel && out.service) {
      const i = service && this.hidx!.services.get(service)
      // A GSLB answer the index cannot place could never be ended by health: not cached.
      if (i === undefined) return null
      svc = i
    }
    const sgen = svc >= 0 ? this.svcGens[svc]! : 0
    const lgen = svc >= 0 ? this.svcLgens[svc]! : 0
    // Whether the answer depends on the client (keyed by location or bucket), or is everyone's.
    const dependent = sel !== undefined && policy !== undefined && policy !== 'failover'
    const b = this.base ?? this.addBase(dependent)
    // Clients that get the same records share one entry: build it (dns2) once per content.
    const content = b.id + contentKey(out)
    let entry = this.built.get(content)
    if (entry === undefined || entry.set !== set) {
      const made = this.build(q, out, set, lgen, svc, sgen, policy === 'geo-latency')
      if (!made) return null
      this.built.set(content, (entry = made))
    } else if (entry.lgen !== lgen || entry.sgen !== sgen) {
      // The same octets under new service generations (the bytes depend on the zone set and the
      // content only): a new validity record over the same buffers, no dns2 encoding.
      this.built.set(content, (entry = entry.at(lgen, sgen)))
    }
    let client = -1
    if (!dependent) {
      b.marker = undefined
      this.lru.set(b.key, entry)
    } else {
      // client() first: when it empties the cache (an id space ran out), b gets a new key.
      client = this.client() * REC
      if (client < 0) return null
      if (!b.parts) this.giveKey(b, true)
      const key = b.key
      const rec = this.rec
      if (policy === 'weighted') {
        b.marker = this.marker(set, 'bucket')
        this.lru.set(key + rec[client + R_BUCKET]!, entry)
      } else {
        b.marker = this.marker(set, 'location')
        if (entry.dep === 'bucket' || entry.dep === 'both') {
          this.lru.set(key + rec[client + R_LOC]!, this.splitMarker(set, svc))
          this.lru.set(key + rec[client + R_BOTH]!, entry)
        } else {
          this.lru.set(key + rec[client + R_LOC]!, entry)
        }
      }
    }
    // Cached for the clients that take it whole; this one gets the full path's truncated reply.
    return this.fits(entry) ? this.assemble(entry, this.lastMsg!, client) : null
  }

  /** A base's marker saying `next` under this zone set (the policy's): one object per kind, shared (markers never change). */
  private marker(set: ServedZoneSet, next: Marker['next']): Marker {
    let m = this.markers
    if (m === undefined || m.bucket.set !== set) {
      m = this.markers = { bucket: new Marker(set, -1, 0, 'bucket'), location: new Marker(set, -1, 0, 'location') }
    }
    return m[next]
  }

  /** A location's marker saying "split by bucket" for service `svc` (its selection tied): valid while the service's state is. */
  private splitMarker(set: ServedZoneSet, svc: number): Marker {
    const idx = this.hidx!
    const gen = idx.gens[svc]!
    let m = idx.markers[svc]
    if (m === undefined || m.sgen !== gen) idx.markers[svc] = m = new Marker(set, svc, gen, 'bucket')
    return m
  }

  /** Adds the base the last parse read (its octets are still in `scratch`), with a key for the answer's kind. */
  private addBase(dependent: boolean): Base {
    if (this.baseCount >= this.maxBases) {
      // Emptied when full; the bases with slots of their own (few: one per client-dependent name,
      // type and flags) stay, so names queried once cannot push them out of the Smi range.
      this.bases.clear()
      this.baseCount = 0
      for (const s of this.slotted) this.adopt(s)
    }
    if (this.nextBaseId >= this.maxBaseId) {
      this.flush()
      this.nextBaseId = 0
    }
    const b: Base = { octets: Buffer.from(this.scratch.subarray(0, this.keyLength)), hash: this.hash, id: this.nextBaseId++, key: 0, parts: false, marker: undefined, next: undefined }
    this.adopt(b)
    this.giveKey(b, dependent)
    this.base = b
    return b
  }

  /** Puts `b` in the base table. */
  private adopt(b: Base): void {
    b.next = this.bases.get(b.hash)
    this.bases.set(b.hash, b)
    this.baseCount++
  }

  /**
   * Gives `b` a new key: with `ownSlot`, a slot of its own (its keys `key + part`; entries under a
   * key it had are orphaned), else one key of a shared slot.
   */
  private giveKey(b: Base, ownSlot: boolean): void {
    b.parts = ownSlot
    if (!ownSlot) {
      b.key = this.baseKeys.single()
      return
    }
    b.key = this.baseKeys.ownSlot()
    if (this.baseKeys.isSmall(b.key)) this.slotted.push(b)
  }

  /**
   * Forgets every answer and every client's location: the GeoIP database changed, so where each
   * client network is (and so its answers) may have too. Between queries only.
   */
  clear(): void {
    this.base = null
    this.parsed = false
    this.flush()
  }

  /**
   * Empties everything keyed by location and bucket ids, so they can start again (an id space ran
   * out: rare), base keys too. The base the last parse found (an insert may be under way with it)
   * is kept, with a new key of the same kind. Base ids go on (`built`'s keys hold them).
   */
  private flush(): void {
    this.flushCount++
    this.lru.clear()
    this.built.clear()
    this.bases.clear()
    this.clearClients()
    this.locIds.clear()
    this.bucketIds.clear()
    this.baseCount = this.nextLocId = this.nextBucketId = 0
    this.baseKeys.reset()
    this.slotted.length = 0
    const held = this.base
    if (held !== null) {
      held.marker = undefined
      this.adopt(held)
      this.giveKey(held, held.parts)
    }
  }

  /** Builds an entry from the full path's outcome, with dns2 as the encoder. */
  private build(q: Query, out: Outcome, set: ServedZoneSet, lgen: number, svc: number, sgen: number, latency: boolean): Entry | null {
    const sel = out.selection
    const drawn = sel && out.kind === 'answer' ? sel.addresses.length : 0
    const fixed = out.answer.slice(0, out.answer.length - drawn)
    const last = drawn > 0 ? out.answer[out.answer.length - 1]! : undefined
    // An answer that cannot be cached by the fewest octets it can take is not encoded to find out.
    if (leastMessageSize(q, q.edns ? 11 + MAX_ECS_OPTION : 0, out.answer, out.authority, out.additional) > CACHEABLE_SIZE) return null
    const pool: RR[] = []
    const groups: number[] = []
    if (sel && last) {
      for (const g of sel.groups) {
        groups.push(pool.length, g.pool.length, g.take)
        for (const address of g.pool) pool.push({ name: last.name, type: last.type, class: 1, ttl: last.ttl, address })
      }
    }
    const edns = q.edns ? { ...q.edns, ecs: null } : null
    const full = encodeResponse({ id: 0, rd: false }, q, { ...out, answer: [...fixed, ...pool], ecsScope: 0 }, edns, CACHEABLE_SIZE, this.serverUdpSize)
    // Truncated even for TCP: the full path answers it each time.
    if (full[2]! & 0x02) return null
    // Find the drawn records in dns2's message: after the header, the question and the fixed answers.
    let off = 12 + q.questionWire.length
    for (let i = 0; i < fixed.length; i++) off = skipRecord(full, off)
    const headEnd = off
    const blockSize = last ? 12 + (last.type === RRTYPE.AAAA ? 16 : 4) : 0
    for (let i = 0; i < pool.length; i++) {
      // Each drawn record must be a compressed owner (2 octets) and fixed-size data.
      if ((full[off]! & 0xc0) !== 0xc0 || skipRecord(full, off) !== off + blockSize) return null
      off += blockSize
    }
    // One unpooled allocation per entry: a slice of Node's shared 8 KiB pool would keep the whole
    // slab alive for as long as the entry lives.
    const own = Buffer.allocUnsafeSlow(full.length)
    full.copy(own)
    const head = own.subarray(0, headEnd)
    head.writeUInt16BE(fixed.length + drawn, 6)
    const blocks = own.subarray(headEnd, off)
    const tail = own.subarray(off)
    const length = head.length + drawn * blockSize + tail.length
    if (length + (q.edns ? MAX_ECS_OPTION : 0) > CACHEABLE_SIZE) return null
    const zone = out.zone!
    const regions = sel?.regions ?? []
    return new Entry({
      set,
      lgen,
      sgen,
      svc,
      latency,
      // Spread over the grace by the golden-ratio sequence: even, and no draw from `rand` (whose
      // sequence the answers' rotation uses).
      grace: latency ? Math.floor(((this.graceSeq++ * GOLDEN) % 1) * this.graceMs) : 0,
      head,
      blocks,
      blockSize,
      groups: Int32Array.from(groups),
      tail,
      length,
      dep: sel?.dependsOn ?? 'none',
      queries: this.metrics?.queryTally(zone.origin, q.qtype, out.rcode) ?? NO_TALLY,
      answers: (regions.length > 0 && out.service && this.metrics?.answerTally(zone.origin, out.service, regions[0]!)) || NO_TALLY,
    })
  }

  /** The reply to `msg` from entry `e`: copy, patch, draw, append ECS. `client`: its record's offset in `rec`, or -1 if not looked up. */
  private assemble(e: Entry, msg: Buffer, client: number): Buffer {
    const ecsExtra = this.ecsExtra()
    const out = Buffer.allocUnsafe(e.length + ecsExtra)
    // Copies by hand, octet by octet: tens of octets, for which a call of TypedArray#set (or of
    // Buffer#copy, with its argument checks) costs about what the octets do (session 10: 0.04 µs
    // less per query in-process, the same in the server's profile).
    // The ID and RD come from the query, the question's octets (its case) too; the rest of the
    // head (counts, fixed answers; CD clear, encode.ts's Head) from the entry.
    const head = e.head
    const qEnd = this.qEnd
    out[0] = msg[0]!
    out[1] = msg[1]!
    out[2] = (head[2]! & 0xfe) | (msg[2]! & 0x01)
    out[3] = head[3]!
    for (let i = 4; i < 12; i++) out[i] = head[i]!
    for (let i = 12; i < qEnd; i++) out[i] = msg[i]!
    let off = head.length
    // Past a few hundred octets (large TXT sets), one set() beats the loop.
    if (off - qEnd > LONG_COPY) out.set(head.subarray(qEnd), qEnd)
    else for (let i = qEnd; i < off; i++) out[i] = head[i]!
    const g = e.groups
    const bs = e.blockSize
    const blocks = e.blocks
    for (let i = 0; i < g.length; i += 3) {
      const start = g[i]!
      const n = g[i + 1]!
      const take = g[i + 2]!
      const k = drawStart(n, this.rand)
      for (let j = 0; j < take; j++) {
        const b = (start + ((k + j) % n)) * bs
        for (let x = 0; x < bs; x++) out[off + x] = blocks[b + x]!
        off += bs
      }
    }
    const tail = e.tail
    if (tail.length > LONG_COPY) out.set(tail, off)
    else for (let i = 0; i < tail.length; i++) out[off + i] = tail[i]!
    off += tail.length
    if (ecsExtra > 0) {
      // Byte writes, not writeUInt16BE: measured cheaper cold (docs/benchmarks.md, session 7).
      // ecsExtra and ecsLen are below 256 (an ECS option's data is at most 20 octets).
      out[off - 2] = 0
      out[off - 1] = ecsExtra
      out[off] = ECS_OPTION >> 8
      out[off + 1] = ECS_OPTION & 0xff
      out[off + 2] = 0
      out[off + 3] = this.ecsLen
      for (let i = 0; i < this.ecsLen; i++) out[off + 4 + i] = msg[this.ecsOff + i]!
      let scope = 0
      if (e.dep !== 'none') {
        const c = client >= 0 ? client : this.client() * REC
        const p = this.rec[c + R_PREFIXES]!
        scope = scopeOf(e.dep, p & 0xff, (p >> 8) & 0xff)
      }
      out[off + 7] = scope
    }
    return out
  }

  /**
   * Reads `msg` for the hot path: a plain query, class IN, one question of ASCII labels without
   * '.' or '\', no records but at most one OPT (version 0, options well formed, at most one ECS
   * and that one valid, no NSID, a COOKIE only of a valid length), nothing after: a TSIG-signed
   * query (a second record, or a record not an OPT) goes to the full path, which answers BADKEY. Sets the base key and the client key; false otherwise.
   */
  private parse(msg: Buffer, peer: string, tcp: boolean): boolean {
    this.parsed = false
    this.cut = false
    this.lastMsg = msg
    this.lastPeer = peer
    const len = msg.length
    if (len < 17 || (msg[2]! & 0xf8) !== 0 || msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0) return false
    const arcount = msg[11]!
    if (arcount > 1) return false
    const key = this.scratch
    let off = 12
    let k = 0
    // FNV-1a over the key's octets, as they are copied.
    let h = 0x811c9dc5
    for (;;) {
      const l = msg[off]!
      if (l === 0) break
      if (l > 63 || off + 1 + l >= len || k + l + 1 > 254) return false
      key[k++] = l
      h = Math.imul(h ^ l, 0x01000193)
      for (let i = off + 1; i <= off + l; i++) {
        let c = msg[i]!
        if (c >= 0x80 || c === 0x2e || c === 0x5c) return false
        if (c >= 0x41 && c <= 0x5a) c |= 0x20
        key[k++] = c
        h = Math.imul(h ^ c, 0x01000193)
      }
      off += 1 + l
    }
    off += 1
    if (off + 4 > len || msg[off + 2] !== 0 || msg[off + 3] !== 1) return false
    this.nameHash = h & 0x3fffffff
    key[k++] = msg[off]!
    key[k++] = msg[off + 1]!
    off += 4
    this.qEnd = off
    this.ecsOff = -1
    let flags = 0
    let udpSize: number | null = null
    if (arcount === 1) {
      // OPT: root owner, TYPE 41, CLASS payload size, TTL ext-rcode|version|DO, RDLENGTH, options.
      if (off + 11 > len || msg[off] !== 0 || msg[off + 1] !== OPT_TYPE >> 8 || msg[off + 2] !== (OPT_TYPE & 0xff) || msg[off + 6] !== 0) return false
      flags = msg[off + 7]! & 0x80 ? 2 : 1
      udpSize = (msg[off + 3]! << 8) | msg[off + 4]!
      const rdlen = (msg[off + 9]! << 8) | msg[off + 10]!
      off += 11
      const end = off + rdlen
      if (end !== len) return false
      while (off < end) {
        if (off + 4 > end) return false
        const code = (msg[off]! << 8) | msg[off + 1]!
        const olen = (msg[off + 2]! << 8) | msg[off + 3]!
        off += 4
        if (off + olen > end) return false
        if (code === ECS_OPTION) {
          if (this.ecsOff >= 0 || ecsProblem(msg, off, olen) !== null) return false
          this.ecsOff = off
          this.ecsLen = olen
        } else if (code === NSID_OPTION) {
          // The server's NSID, when it has one, is the full path's to add (RFC 5001): rare queries.
          return false
        } else if (code === COOKIE_OPTION && cookieProblem(olen) !== null) {
          // A COOKIE of a bad length is the full path's FORMERR (RFC 7873 §5.2.2); a good one is ignored.
          return false
        }
        off += olen
      }
    } else if (off !== len) {
      return false
    }
    key[k++] = flags
    this.limit = replyLimit(tcp, udpSize, this.serverUdpSize)
    h = Math.imul(h ^ ((msg[this.qEnd - 4]! << 16) | (msg[this.qEnd - 3]! << 8) | flags), 0x01000193)
    // A small integer (a V8 Smi) makes the cheapest Map key.
    h &= 0x3fffffff
    this.hash = h
    this.keyLength = k
    let b = this.bases.get(h)
    while (b !== undefined && !sameOctets(b.octets, key, k)) b = b.next
    this.base = b ?? null
    // The client's key is worked out when a record is first needed (keyClient()): static answers
    // and NXDOMAIN never need one.
    this.keyed = false
    this.parsed = true
    return true
  }

  /** Works out the client key of the message parse() read (its kind, numbers or text): once, when client() first needs it. */
  private keyClient(): void {
    this.keyed = true
    const msg = this.lastMsg!
    if (this.ecsOff >= 0) {
      // family (2), source prefix, then the address octets: the client network as sent.
      const o = this.ecsOff
      const source = msg[o + 2]!
      if (msg[o + 1] === 1 && source <= 24) {
        // IPv4 up to /24: source prefix (5 bits) and the first three octets, a small integer.
        // The option carries only the prefix's octets (ecsProblem checked): absent ones are 0.
        const n = this.ecsLen - 4
        this.clientKind = CLIENT_ECS4
        this.clientNum = (source << 24) | ((n > 0 ? msg[o + 4]! : 0) << 16) | ((n > 1 ? msg[o + 5]! : 0) << 8) | (n > 2 ? msg[o + 6]! : 0)
      } else if (msg[o + 1] === 2 && source <= 56) {
        // IPv6 up to /56 (Google Public DNS sends /56): octets 0-3, then the source prefix and octets 4-6.
        const n = this.ecsLen - 4
        this.clientKind = CLIENT_ECS6
        this.clientNum = ((n > 0 ? msg[o + 4]! : 0) << 24) | ((n > 1 ? msg[o + 5]! : 0) << 16) | ((n > 2 ? msg[o + 6]! : 0) << 8) | (n > 3 ? msg[o + 7]! : 0)
        this.clientNum2 = (source << 24) | ((n > 4 ? msg[o + 8]! : 0) << 16) | ((n > 5 ? msg[o + 9]! : 0) << 8) | (n > 6 ? msg[o + 10]! : 0)
      } else {
        // family, source and scope prefixes, address: the client network as sent (never an address text).
        this.clientKind = CLIENT_TEXT
        this.clientText = msg.toString('latin1', o, o + this.ecsLen)
      }
    } else {
      // No ECS: the resolver is the client. Its address text is new per datagram (dgram's rinfo),
      // so a Map would hash it every time: IPv4 goes by number.
      const n = ipv4Number(this.lastPeer)
      if (n !== -1) {
        this.clientKind = CLIENT_PEER4
        this.clientNum = n
      } else {
        this.clientKind = CLIENT_TEXT
        this.clientText = this.lastPeer
      }
    }
  }

  /**
   * The record of the last parsed message's client (its location and bucket), made on first sight;
   * -1 for a peer that is not an address (TCP once passed '' for a closed connection), which the
   * cache then treats as a miss: the full path answers it.
   */
  private client(): number {
    if (!this.keyed) this.keyClient()
    const kind = this.clientKind
    if (kind === CLIENT_TEXT) return this.byText.get(this.clientText) ?? this.addTextClient()
    const slots = this.tables[kind]!
    const r = slots[this.slotIn(slots, kind) + SLOT_RECORD[kind]!]!
    return r !== 0 ? r - 1 : this.addClient(this.locate())
  }

  /**
   * Where the client's key is in `slots`, the table of its (numeric) kind, or the empty slot where it
   * goes: pairs (key, record + 1), or for IPv6 quads (key, key, record + 1, unused); 0 is empty.
   */
  private slotIn(slots: Int32Array, kind: number): number {
    const k = this.clientNum
    const mask = slots.length - 1
    if (kind === CLIENT_ECS6) {
      const k2 = this.clientNum2
      let i = this.firstSlot(k ^ Math.imul(k2, 0x85ebca6b)) << 1
      while (slots[i + 2] !== 0 && (slots[i] !== k || slots[i + 1] !== k2)) i = (i + 4) & mask
      return i
    }
    let i = this.firstSlot(k)
    while (slots[i + 1] !== 0 && slots[i] !== k) i = (i + 2) & mask
    return i
  }

  /** Where the probe for client number `k` starts in a table of pairs (twice that in one of quads). */
  private firstSlot(k: number): number {
    return (Math.imul(k, 0x9e3779b1) >>> this.slotShift) << 1
  }

  /**
   * A record for a client of the text kind seen for the first time: an ECS network past /24 (IPv4)
   * or /56 (IPv6), whose text is the option's octets, or a peer address that is not IPv4. A peer
   * that is no address at all gets -1 (a miss, so the full path answers it), never a record.
   */
  private addTextClient(): number {
    if (this.ecsOff < 0 && isIP(this.clientText) === 0) return -1
    return this.addClient(this.locate())
  }

  /** Adds a record for the last parsed message's client, located at `c`; returns it. */
  private addClient(c: ClientLocation): number {
    // Located by GeoIP; a zone's default location stands in for the others (the responder applies it).
    const located = c.source === 'ecs' || c.source === 'resolver'
    if (this.nextLocId >= this.idSpace - 1 || this.nextBucketId >= this.idSpace - 2) this.flush()
    if (this.recCount >= this.maxClients) this.clearClients()
    const loc = located ? `${c.point!.lat},${c.point!.lon}` : 'none'
    let locId = this.locIds.get(loc)
    if (locId === undefined) this.locIds.set(loc, (locId = this.nextLocId++))
    if (this.bucketIds.size >= this.maxClients) this.bucketIds.clear()
    let bucketId = this.bucketIds.get(c.bucket)
    if (bucketId === undefined) this.bucketIds.set(c.bucket, (bucketId = this.nextBucketId++))
    const r = this.recCount++
    const o = r * REC
    this.rec[o + R_LOC] = 1 + locId
    this.rec[o + R_BUCKET] = this.idSpace + bucketId
    // Unique to this record (so to its location and bucket): a record made again gets a new one.
    this.rec[o + R_BOTH] = this.idSpace + this.nextBucketId++
    this.rec[o + R_PREFIXES] = c.geoPrefix | (c.bucketPrefix << 8)
    this.recLoc[r] = c
    const kind = this.clientKind
    this.tablesUsed |= 1 << kind
    if (kind === CLIENT_TEXT) {
      this.byText.set(this.clientText, r)
    } else {
      // Probed again: addClient() may have emptied the tables since client() looked.
      const slots = this.tables[kind]!
      const i = this.slotIn(slots, kind)
      slots[i] = this.clientNum
      if (kind === CLIENT_ECS6) slots[i + 1] = this.clientNum2
      slots[i + SLOT_RECORD[kind]!] = r + 1
    }
    return r
  }

  private clearClients(): void {
    this.tables.forEach((t, kind) => {
      if (this.tablesUsed & (1 << kind)) t.fill(0)
    })
    this.tablesUsed = 0
    this.byText.clear()
    this.recLoc.length = 0
    this.recCount = 0
  }

  /** Where the client of the last parsed message is, without any zone's default location. */
  private locate(): ClientLocation {
    // The option was found valid by parse(): readEcs does not throw here.
    return locateRaw(this.ecsOff >= 0 ? readEcs(this.lastMsg!, this.ecsOff, this.ecsLen) : null, this.lastPeer, this.geo)
  }

  /**
   * The NXDOMAIN for the message the last parse() read, when its name is in a served zone and is
   * no name of it (no node, so no CNAME to follow either), and its type is one the full path answers
   * (responder.ts): the same octets as the full path's `negative()`. Null otherwise (the full path
   * decides), and when it would not fit what the client takes (the full path then truncates).
   */
  private nxdomain(msg: Buffer): Buffer | null {
    const key = this.scratch
    const nameEnd = this.keyLength - 3
    const qtype = (key[nameEnd]! << 8) | key[nameEnd + 1]!
    if (NOT_NX_TYPES.has(qtype)) return null
    const set = this.zones()
    let idx = this.names
    if (idx === undefined || idx.set !== set) idx = this.names = this.nameIndex(set)
    // The zone: the longest origin that ends the name at a label boundary (findZone's rule).
    let z = -1
    for (let i = 0; i <= nameEnd && z < 0; i += 1 + key[i]!) {
      for (let j = 0; j < idx.zones.length; j++) {
        const o = idx.zones[j]!.origin
        if (o.length === nameEnd - i && sameAt(o, 0, key, i, o.length)) {
          z = j
          break
        }
      }
    }
    if (z < 0) return null
    const at = idx.offsets
    for (let n = idx.byHash.get(this.nameHash) ?? -1; n >= 0; n = idx.next[n]!) {
      if (idx.zoneOf[n] === z && at[n + 1]! - at[n]! === nameEnd && sameAt(idx.octets, at[n]!, key, 0, nameEnd)) return null
    }
    const zone = idx.zones[z]!
    const flags = key[this.keyLength - 1]!
    const ecs = this.ecsOff >= 0 ? this.ecsLen : 0
    const out = this.nxReply((msg[0]! << 8) | msg[1]!, (msg[2]! & 0x01) !== 0, msg, 12, this.qEnd, zone.zone.negativeSoa, flags, ecs, this.limit)
    if (out === null) return null
    if (ecs > 0) {
      // The client's option data as sent (parse() checked it), scope 0: the name exists for no one.
      const o = out.length - ecs
      for (let i = 0; i < ecs; i++) out[o + i] = msg[this.ecsOff + i]!
      out[o + 3] = 0
    }
    const counted = countedQtype(qtype)
    let t = zone.tallies.get(counted)
    if (t === undefined) zone.tallies.set(counted, (t = this.metrics?.queryTally(zone.zone.origin, counted, 3) ?? { n: 0 }))
    t.n++
    return out
  }

  /**
   * NXDOMAIN without CNAMEs, assembled from the query's own question and the zone's SOA encoded
   * once (uncompressed, so it can follow any question); null when it does not apply or fit.
   */
  negative(q: Query, out: Outcome, maxSize: number): Buffer | null {
    if (out.kind !== 'nxdomain' || !out.zone || out.answer.length > 0 || out.additional.length > 0 || out.authority.length !== 1 || q.oddName || q.edns?.nsid) return null
    const ecs = q.edns?.ecs ?? null
    const ecsData = ecs ? ecsDataLength(ecs) : 0
    const edns = q.edns ? (q.edns.dnssecOk ? 2 : 1) : 0
    const msg = this.nxReply(q.id, q.rd, q.questionWire, 0, q.questionWire.length, out.zone.negativeSoa, edns, ecsData, maxSize)
    if (msg !== null && ecs) {
      const o = msg.length - ecsData
      msg.writeUInt16BE(ecs.family, o)
      msg[o + 2] = ecs.sourcePrefix
      msg[o + 3] = 0
      ecs.bytes.copy(msg, o + 4, 0, ecsData - 4)
    }
    return msg
  }

  /**
   * A NXDOMAIN (AA, rcode 3, RD as asked, CD clear) for the question `question[qStart, qEnd)`, the
   * zone's SOA (`negativeSoa`, encoded once) in the authority section, and for an EDNS query
   * (`edns` 1, or 2 with DO) an OPT whose ECS option has `ecsData` octets of data, left for the
   * caller to write at the end of the message; null when longer than `maxSize`. Both negative()
   * and the hot path's nxdomain() write through here, so their octets cannot drift apart.
   */
  private nxReply(id: number, rd: boolean, question: Uint8Array, qStart: number, qEnd: number, negativeSoa: RR, edns: number, ecsData: number, maxSize: number): Buffer | null {
    const soa = this.soaTemplate(negativeSoa)
    const length = 12 + qEnd - qStart + soa.length + (edns > 0 ? 11 + (ecsData > 0 ? 4 + ecsData : 0) : 0)
    if (length > maxSize) return null
    const out = Buffer.allocUnsafe(length)
    out[0] = id >> 8
    out[1] = id & 0xff
    out[2] = 0x84 | (rd ? 1 : 0)
    out[3] = 3
    out[4] = 0
    out[5] = 1
    out[6] = out[7] = out[8] = 0
    out[9] = 1
    out[10] = 0
    out[11] = edns > 0 ? 1 : 0
    let off = 12
    for (let i = qStart; i < qEnd; i++) out[off++] = question[i]!
    out.set(soa, off)
    off += soa.length
    if (edns > 0) {
      off = writeOpt(out, off, this.serverUdpSize, edns === 2, ecsData > 0 ? 4 + ecsData : 0)
      if (ecsData > 0) {
        out[off] = ECS_OPTION >> 8
        out[off + 1] = ECS_OPTION & 0xff
        out[off + 2] = 0
        out[off + 3] = ecsData
      }
    }
    return out
  }

  private soaTemplate(soa: RR): Buffer {
    let t = this.soaTemplates.get(soa)
    if (!t) {
      const p = new Packet()
      p.header = new Packet.Header({ id: 0, qr: 1 } as never)
      p.authorities = [soa] as never
      t = Buffer.from(encodeUncompressed(p).subarray(12))
      this.soaTemplates.set(soa, t)
    }
    return t
  }

}

/** What an answer's bytes depend on besides the base key: rcode, records (and how drawn), region, dependence. */
function contentKey(out: Outcome): string {
  const sel = out.selection
  let k = `|${out.kind}|${out.answer.length}|${out.service ?? ''}`
  if (!sel) return k
  k += `|${sel.dependsOn}|${sel.regions[0] ?? ''}|${out.answer.length > 0 ? out.answer[out.answer.length - 1]!.ttl : ''}`
  for (const g of sel.groups) k += `|${g.take}:${g.pool.join(',')}`
  return k
}

/** What an entry is counted as against the cache's byte bounds: its octets and the objects around them. */
function entrySize(e: Entry): number {
  return ENTRY_OVERHEAD + e.head.length + e.blocks.length + e.tail.length
}

/** FNV-1a over `buf[start, end)`, as a small integer (a V8 Smi): what parse() computes for a name as it reads it (`nameHash`). */
function fnv(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193)
  return h & 0x3fffffff
}

/** Whether `a` from `aOff` and `b` from `bOff` hold the same `n` octets. */
function sameAt(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[aOff + i] !== b[bOff + i]) return false
  return true
}

/** A name (`Zone.nodes`' form: lowercase, dots between labels) as the hot path's labels, or null if the hot path never reads it. */
function nameOctets(name: string): Buffer | null {
  const out = Buffer.allocUnsafe(name.length + 1)
  const end = writeNameOctets(name, out, 0)
  return end < 0 ? null : out.subarray(0, end)
}

/**
 * Writes `name` as the hot path's labels (length octet, then the label's octets) into `out` at
 * `off` (room for its length + 1 octets); returns the offset past them, or -1 if the hot path never
 * reads the name (an empty or over-long label, an octet over 0x7f, a backslash, an uppercase
 * letter). The root ('') is no octets.
 */
export function writeNameOctets(name: string, out: Uint8Array, off: number): number {
  if (name === '') return off
  let len = off
  let k = off + 1
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2e
    if (c === 0x2e) {
      const l = k - len - 1
      if (l === 0 || l > 63) return -1
      out[len] = l
      len = k++
      continue
    }
    if (c >= 0x80 || c === 0x5c || (c >= 0x41 && c <= 0x5a)) return -1
    out[k++] = c
  }
  return len
}

/** Indexes made ahead for a set (AnswerCache.prepareNext), each until it is taken. */
interface Ahead {
  readonly set: ServedZoneSet
  readers: Readers | undefined
  names: NameIndex | undefined
}

/** Services between two steps of readersSteps(), names between two of nameIndexSteps(): ~1 ms of work each. */
const SERVICES_PER_STEP = 250
const NAMES_PER_STEP = 2000

/** The Readers of `set`, made in steps (a yield every SERVICES_PER_STEP services): runSteps() makes them at once. */
function* readersSteps(set: ServedZoneSet): Generator<void, Readers> {
  const services = new Map<Service, number>()
  const keyIndex = new Map<string, number>()
  const keys: string[] = []
  const readers: number[][] = []
  const latencyReaders: number[][] = []
  for (const zone of set.zones.values()) {
    for (const service of zone.services.values()) {
      const svc = services.size
      if (svc > 0 && svc % SERVICES_PER_STEP === 0) yield
      services.set(service, svc)
      for (const r of service.regions) {
        for (const v of zone.regions.get(r)?.vips ?? []) {
          if (v.checkKey === null) continue
          let k = keyIndex.get(v.checkKey)
          if (k === undefined) {
            keyIndex.set(v.checkKey, (k = keys.length))
            keys.push(v.checkKey)
            readers.push([])
            latencyReaders.push([])
          }
          // Services are indexed in order, so one already reading this check is the last listed
          // (two of its VIPs share a check): includes() here made 5,000 services ~130 ms a set.
          if (readers[k]!.at(-1) === svc) continue
          readers[k]!.push(svc)
          if (service.policy === 'geo-latency') latencyReaders[k]!.push(svc)
        }
      }
    }
  }
  return { set, services, keyIndex, keys, readers, latencyReaders }
}

/** Runs `steps` to its end at once; its result. */
function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/** Runs `steps` to its end with `turn()` awaited between two steps; its result. */
async function stepThrough<T>(steps: Generator<void, T>, turn: () => Promise<unknown>): Promise<T> {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await turn()
  }
}

/**
 * The NameIndex of `set`, made in steps (a yield every NAMES_PER_STEP names): runSteps() makes it
 * at once. Each name's octets are written straight into one buffer, sized by the names' lengths
 * (a name's octets are its text's length + 1), not made one Buffer each and joined: 5,000 names
 * were 10,000 objects and a copy.
 */
function* nameIndexSteps(set: ServedZoneSet): Generator<void, NameIndex> {
  const zones = [...set.zones.values()].map((zone) => ({ zone, origin: nameOctets(zone.origin), tallies: new Map<number, Tally>() }))
  const usable = zones.filter((z): z is typeof z & { origin: Buffer } => z.origin !== null).sort((a, b) => b.origin.length - a.origin.length)
  let count = 0
  let room = 0
  for (const z of usable) {
    count += z.zone.nodes.size
    for (const name of z.zone.nodes.keys()) room += name.length + 1
  }
  const octets = Buffer.allocUnsafe(room)
  const offsets = new Int32Array(count + 1)
  const zoneOf = new Int32Array(count)
  let n = 0
  let seen = 0
  for (let j = 0; j < usable.length; j++) {
    for (const name of usable[j]!.zone.nodes.keys()) {
      if (++seen % NAMES_PER_STEP === 0) yield
      const end = writeNameOctets(name, octets, offsets[n]!)
      if (end < 0) continue
      zoneOf[n] = j
      offsets[++n] = end
    }
  }
  const next = new Int32Array(n).fill(-1)
  const byHash = new Map<number, number>()
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % NAMES_PER_STEP === 0) yield
    const h = fnv(octets, offsets[i]!, offsets[i + 1]!)
    next[i] = byHash.get(h) ?? -1
    byHash.set(h, i)
  }
  return { set, zones: usable, octets: octets.subarray(0, offsets[n]!), offsets: offsets.slice(0, n + 1), zoneOf: zoneOf.slice(0, n), next, byHash }
}

function sameOctets(a: Buffer, b: Buffer, n: number): boolean {
  if (a.length !== n) return false
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

/** Offset just past the resource record at `off`. */
function skipRecord(buf: Buffer, off: number): number {
  const end = skipName(buf, off)
  return end + 10 + buf.readUInt16BE(end + 8)
}
