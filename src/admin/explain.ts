/**
 * The selector's decision trace for one question, as JSON (GET /v1/explain) and as text for a person
 * (`meridian explain`). The question is answered by the DNS path itself: a `Resolver` built in
 * cli.ts runs the responder and the client locator the DNS server runs (admin/ never imports dns/),
 * so the trace is what DNS would answer, not a re-implementation of it.
 */
import { isIP } from 'node:net'
import type { ClientLocation, VipHealth } from '../model/gslb.js'
import { canonicalAddress, maskAddress } from '../model/address.js'
import { canonical } from '../model/name.js'
import { RRTYPE, RRTYPE_NAME, type RR, type ServedZone } from '../model/types.js'
import type { Selection } from '../select/select.js'
import { badRequest } from './errors.js'

/** The question, as given to the API (query string) or the CLI. */
export interface ExplainRequest {
  name: string
  type?: string
  /** The resolver's (or client's) address the query comes from. */
  client: string
  /** An EDNS Client Subnet, `ADDR/PREFIX`. */
  ecs?: string
}

export interface ExplainQuestion {
  name: string
  qtype: number
  client: string
  ecs: { address: string; family: 4 | 6; prefix: number } | null
}

/** What the DNS path made of one question. */
export interface Resolution {
  rcode: number
  zone: ServedZone | undefined
  answer: readonly RR[]
  ecsScope: number
  selection: Selection | undefined
  /** The client as the selector saw it (null outside our zones). */
  client: ClientLocation | null
}

export type Resolver = (q: ExplainQuestion) => Resolution

export interface ExplainVip {
  address: string
  family: 4 | 6
  check: string | null
  health: 'up' | 'down' | 'unknown' | 'unchecked'
}

export interface ExplainCandidate {
  region: string
  /** usable | standby | drained | down | no-address-of-family | unknown-region */
  status: string
  /** Still in the running after health, drain and family (usable or standby); false = dropped. */
  kept: boolean
  chosen: boolean
  weight: number
  distanceKm: number | null
  latencyEstimateMs: number | null
  measuredMs: number | null
  healthyVips: number
  vipsOfFamily: number
  minHealthy: number | null
  vips: ExplainVip[]
  why: string
}

export interface ExplainTrace {
  query: { name: string; type: string; client: string; ecs: string | null }
  zone: string | null
  rcode: string
  client: {
    address: string
    family: 4 | 6
    source: ClientLocation['source']
    how: string
    country: string | null
    continent: string | null
    point: { lat: number; lon: number } | null
    geoPrefix: number
    bucket: string
  } | null
  service: {
    name: string
    policy: string
    answers: number
    ttl: number
    fallback: string
    unknown: 'up' | 'down'
    toleranceMs: number
    fill: boolean
    regions: string[]
  } | null
  decision: string | null
  fallback: string | null
  candidates: ExplainCandidate[]
  answer: { name: string; type: string; ttl: number; data: string }[]
  ttl: number | null
  ecsScope: number
}

const RCODE_NAME: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS' }

/** Checks and parses the question; 400 (E_API_BODY) for a bad one. */
export function parseExplainRequest(req: Partial<ExplainRequest>): ExplainQuestion {
  if (typeof req.name !== 'string' || req.name.trim() === '') throw badRequest('is required: the name to explain, e.g. www.gslb.example.com', 'name')
  const name = canonical(req.name)
  if (name.length > 253) throw badRequest(`is ${name.length} characters long; at most 253`, 'name')
  // No query can carry these: explaining them would explain another name (`..` as `.`).
  const labels = name === '' ? [] : name.split('.')
  if (labels.some((l) => l === '')) throw badRequest('has an empty label (two dots in a row)', 'name')
  const long = labels.find((l) => l.length > 63)
  if (long !== undefined) throw badRequest(`has a label of ${long.length} characters; at most 63 fit in a DNS name`, 'name')
  const typeText = (req.type ?? 'A').trim().toUpperCase()
  const qtype = /^\d+$/.test(typeText) ? Number(typeText) : (RRTYPE as Record<string, number>)[typeText]
  if (qtype === undefined || qtype < 1 || qtype > 65535) throw badRequest(`must be a record type such as A, AAAA, TXT or ANY, got ${JSON.stringify(req.type)}`, 'type')
  if (typeof req.client !== 'string' || isIP(req.client) === 0) throw badRequest(`must be the IPv4 or IPv6 address the query comes from, got ${JSON.stringify(req.client ?? null)}`, 'client')
  let ecs: ExplainQuestion['ecs'] = null
  if (req.ecs !== undefined && req.ecs !== '') {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(req.ecs.trim())
    const family = m ? isIP(m[1]!) : 0
    const prefix = m ? Number(m[2]) : NaN
    if (!m || family === 0 || prefix > (family === 4 ? 32 : 128)) throw badRequest(`must be a client subnet ADDR/PREFIX such as 81.2.69.0/24 or 2001:db8::/56, got ${JSON.stringify(req.ecs)}`, 'ecs')
    const masked = maskAddress(m[1]!, prefix)
    // As on the wire: an ECS address with bits set past its prefix is FORMERR there (RFC 7871 §6).
    if (masked !== canonicalAddress(m[1]!)) throw badRequest(`has bits set past its /${prefix} prefix, which a DNS query may not send (RFC 7871 §6): did you mean ${masked}/${prefix}?`, 'ecs')
    ecs = { address: m[1]!, family: family as 4 | 6, prefix }
  }
  return { name, qtype, client: req.client, ecs }
}

const round = (x: number | null, digits = 1): number | null => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits)

/** Record data in master-file text. */
function rdataText(rr: RR): string {
  switch (rr.type) {
    case RRTYPE.A:
    case RRTYPE.AAAA:
      return rr.address ?? ''
    case RRTYPE.CNAME:
      return `${rr.domain}.`
    case RRTYPE.NS:
      return `${rr.ns}.`
    case RRTYPE.MX:
      return `${rr.priority} ${rr.exchange}.`
    case RRTYPE.TXT:
      return (rr.data ?? []).map((b) => JSON.stringify(b.toString('utf8'))).join(' ')
    case RRTYPE.SRV:
      return `${rr.priority} ${rr.weight} ${rr.port} ${rr.target}.`
    case RRTYPE.CAA:
      return `${rr.flags ?? 0} ${rr.tag} ${JSON.stringify(rr.value)}`
    case RRTYPE.SOA:
      return `${rr.primary}. ${rr.admin}. ${rr.serial} ${rr.refresh} ${rr.retry} ${rr.expiration} ${rr.minimum}`
    default:
      return ''
  }
}

function how(c: ClientLocation, q: ExplainQuestion): string {
  const what = q.ecs ? `the ECS subnet ${q.ecs.address}/${q.ecs.prefix}` : `the resolver address ${q.client}`
  switch (c.source) {
    case 'ecs':
    case 'resolver':
      return `GeoIP lookup of ${what}: ${c.country ?? '?'}${c.continent ? ` (${c.continent})` : ''}, decided by the database network /${c.geoPrefix}`
    case 'default':
      return `GeoIP has no location for ${what} (private, reserved or unknown): the zone's defaultLocation`
    case 'none':
      return `GeoIP has no location for ${what} and the zone has no defaultLocation: no geographic preference`
  }
}

/** Runs the question through `resolve` and turns the outcome into the trace. */
export function explain(q: ExplainQuestion, resolve: Resolver, health: (checkKey: string) => VipHealth | undefined): ExplainTrace {
  const r = resolve(q)
  const typeName = RRTYPE_NAME[q.qtype] ?? `TYPE${q.qtype}`
  // The service that answered: the question's name, or the end of the CNAME chain before it.
  let owner = q.name
  for (const rr of r.answer) if (rr.type === RRTYPE.CNAME && rr.domain) owner = rr.domain
  const service = r.selection ? r.zone?.services.get(owner) : undefined
  const candidates: ExplainCandidate[] = (r.selection?.candidates ?? []).map((c) => {
    const region = r.zone?.regions.get(c.region)
    const vips: ExplainVip[] = (region?.vips ?? []).map((v) => ({
      address: v.address,
      family: v.family,
      check: v.checkKey,
      health: v.checkKey === null ? 'unchecked' : (health(v.checkKey)?.state ?? 'unknown'),
    }))
    return {
      region: c.region,
      status: c.status,
      kept: c.status === 'usable' || c.status === 'standby',
      chosen: c.chosen,
      weight: c.weight,
      distanceKm: round(c.distanceKm, 0),
      latencyEstimateMs: round(c.estimateMs),
      measuredMs: round(c.measuredMs),
      healthyVips: c.healthyVips,
      vipsOfFamily: c.vipsOfFamily,
      minHealthy: region?.minHealthy ?? null,
      vips,
      why: c.why,
    }
  })
  return {
    query: { name: q.name, type: typeName, client: q.client, ecs: q.ecs ? `${q.ecs.address}/${q.ecs.prefix}` : null },
    zone: r.zone?.origin ?? null,
    rcode: RCODE_NAME[r.rcode] ?? String(r.rcode),
    client: r.client
      ? {
          address: r.client.address,
          family: r.client.family,
          source: r.client.source,
          how: how(r.client, q),
          country: r.client.country,
          continent: r.client.continent,
          point: r.client.point ? { lat: r.client.point.lat, lon: r.client.point.lon } : null,
          geoPrefix: r.client.geoPrefix,
          bucket: r.client.bucket,
        }
      : null,
    service: service
      ? {
          name: service.name,
          policy: service.policy,
          answers: service.answers,
          ttl: service.ttl,
          fallback: service.fallback,
          unknown: service.unknownAs,
          toleranceMs: service.toleranceMs,
          fill: service.fill,
          regions: [...service.regions],
        }
      : null,
    decision: r.selection?.reason ?? null,
    fallback: r.selection?.fallback ?? null,
    candidates,
    answer: r.answer.map((rr) => ({ name: `${rr.name}.`, type: RRTYPE_NAME[rr.type] ?? String(rr.type), ttl: rr.ttl, data: rdataText(rr) })),
    ttl: r.selection ? r.selection.ttl : r.answer.length > 0 ? Math.min(...r.answer.map((a) => a.ttl)) : null,
    ecsScope: r.ecsScope,
  }
}

const pad = (s: string, n: number) => (s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length))

/** The trace for a person: what was asked, who asked and from where, every region and why, the answer. */
export function formatTrace(t: ExplainTrace): string {
  const out: string[] = []
  out.push(`${t.query.name} ${t.query.type} from ${t.query.client}${t.query.ecs ? ` with ECS ${t.query.ecs}` : ''}`)
  if (!t.zone) {
    out.push(`  not in any zone served here: ${t.rcode}`)
    return out.join('\n') + '\n'
  }
  out.push(`zone:     ${t.zone}`)
  if (t.client) {
    const at = t.client.point ? `at ${t.client.point.lat.toFixed(2)}, ${t.client.point.lon.toFixed(2)}` : 'location unknown'
    out.push(`client:   ${t.client.address} ${at}; ${t.client.how}; affinity bucket ${t.client.bucket}`)
  }
  if (t.service) {
    const s = t.service
    out.push(`service:  ${s.name}: policy ${s.policy}, answers ${s.answers}, ttl ${s.ttl}, fallback ${s.fallback}, unknown counts as ${s.unknown}${s.policy === 'geo-latency' ? `, tolerance ${s.toleranceMs} ms` : ''}${s.fill ? ', fill' : ''}`)
    out.push('regions:')
    out.push(`  ${pad('', 2)}${pad('region', 16)}${pad('status', 22)}${pad('weight', 7)}${pad('distance', 10)}${pad('estimate', 10)}${pad('health', 30)}why`)
    for (const c of t.candidates) {
      const mark = c.chosen ? '* ' : c.kept ? '+ ' : '- '
      const health = c.vips.length === 0 ? '-' : `${c.healthyVips}/${c.vips.length} VIPs (${c.vips.map((v) => v.health).join(',')})`
      out.push(
        `  ${mark}${pad(c.region, 16)}${pad(c.status, 22)}${pad(String(c.weight), 7)}${pad(c.distanceKm === null ? '-' : `${c.distanceKm} km`, 10)}${pad(c.latencyEstimateMs === null ? '-' : `${c.latencyEstimateMs} ms`, 10)}${pad(health, 30)}${c.why}`,
      )
    }
    out.push('  (* answered, + kept but not chosen, - dropped)')
    out.push(`decision: ${t.decision ?? '-'}`)
  }
  out.push(`answer:   ${t.rcode}${t.answer.length === 0 ? (t.rcode === 'NOERROR' ? ' (NODATA)' : '') : ''}`)
  for (const a of t.answer) out.push(`  ${a.name} ${a.ttl} IN ${a.type} ${a.data}`)
  out.push(`ttl:      ${t.ttl ?? '-'}`)
  out.push(`ECS scope: /${t.ecsScope}${t.query.ecs ? '' : ' (no ECS in the question: nothing to echo)'}`)
  return out.join('\n') + '\n'
}
