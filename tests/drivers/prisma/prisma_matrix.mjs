// Prisma 7 (prisma-client generator, @prisma/adapter-pg on node-postgres)
// through a pooler in transaction mode: 8 concurrent PrismaClients (each with
// its own PrismaPg adapter, a pg.Pool of at most 2 connections) x 30
// iterations of CRUD (create, findUnique, update, findMany with a where, a
// unique violation, delete), an interactive $transaction (one backend, one
// transaction id throughout), an interactive $transaction rolled back by a
// throw, and a batch $transaction([...]). adapter-pg sends unnamed prepared
// statements by default; odd-numbered clients pass a statementNameGenerator
// so they use named ones (prepared once per connection, then reused).
// Exits non-zero with the errors on any failure.
//
// usage: SLUICE_PRISMA_DIR=.local/prisma \
//        $SLUICE_PRISMA_DIR/node_modules/.bin/tsx prisma_matrix.mjs URL
//
// SLUICE_PRISMA_DIR holds node_modules (prisma, @prisma/client,
// @prisma/adapter-pg, tsx) and the generated TypeScript client (generated/),
// made by sluice_ensure_node_drivers in scripts/lib.sh; tsx runs this file so
// that the generated .ts files can be imported.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const url = process.argv[2];
const dir = process.env.SLUICE_PRISMA_DIR;
if (!url || !dir) {
  console.log('usage: SLUICE_PRISMA_DIR=DIR tsx prisma_matrix.mjs URL');
  process.exit(2);
}
const CLIENTS = 8;
const QUERIES = 30;
// Generous: through a pool of 2 servers a BEGIN may wait for one.
const TX = { maxWait: 20000, timeout: 30000 };

// This file lives in the source tree, the packages under .local: resolve
// them from there (ESM ignores NODE_PATH).
const requireFromDir = createRequire(path.join(path.resolve(dir), 'package.json'));
const { PrismaPg } = requireFromDir('@prisma/adapter-pg');
const { PrismaClient, Prisma } = await import(
  pathToFileURL(path.join(path.resolve(dir), 'generated', 'client.ts')).href
);

const run = `${process.pid}-${Date.now()}`;

function prismaClient(named) {
  const options = named
    ? { statementNameGenerator: (q) => `s_${createHash('sha1').update(q.sql).digest('hex').slice(0, 16)}` }
    : undefined;
  const adapter = new PrismaPg({ connectionString: url, max: 2 }, options);
  return new PrismaClient({ adapter, transactionOptions: TX });
}

function expect(ok, what, got) {
  if (!ok) throw new Error(`${what}: got ${JSON.stringify(got, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
}

class Rollback extends Error {}

async function iteration(prisma, n, i, named) {
  const prefix = `${run}/${n}/`;
  const name = `${prefix}${i}`;
  const mine = { name: { startsWith: prefix } };

  const created = await prisma.item.create({ data: { client: n, name, qty: i } });
  expect(Number.isInteger(created.id) && created.name === name && created.qty === i, 'create', created);
  const found = await prisma.item.findUnique({ where: { id: created.id } });
  expect(found && found.name === name && found.client === n, 'findUnique', found);
  const updated = await prisma.item.update({ where: { id: created.id }, data: { qty: { increment: 100 } } });
  expect(updated.qty === i + 100, 'update', updated);
  const many = await prisma.item.findMany({ where: { client: n, ...mine }, orderBy: { id: 'asc' } });
  expect(many.length === 1 && many[0].id === created.id && many[0].qty === i + 100, 'findMany', many);

  // An error in the extended protocol (ErrorResponse, then Sync).
  try {
    await prisma.item.create({ data: { client: n, name, qty: 0 } });
    throw new Error('duplicate name accepted');
  } catch (e) {
    expect(e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002', 'unique violation', String(e));
  }

  // Interactive transaction: every query on one server, in one transaction.
  const tx = await prisma.$transaction(async (tx) => {
    const [first] = await tx.$queryRaw`SELECT pg_backend_pid() AS pid, txid_current() AS xid`;
    const a = await tx.item.create({ data: { client: n, name: `${name}/a`, qty: 1 } });
    const b = await tx.item.update({ where: { id: created.id }, data: { qty: { decrement: 1 } } });
    const count = await tx.item.count({ where: mine });
    const [last] = await tx.$queryRaw`SELECT pg_backend_pid() AS pid, txid_current() AS xid, ${n}::int AS n,
      (SELECT count(*) FROM pg_prepared_statements) AS prepared`;
    return { first, last, a, b, count };
  });
  expect(tx.a.qty === 1 && tx.b.qty === i + 99 && tx.count === 2, 'interactive $transaction', tx);
  expect(
    tx.first.pid === tx.last.pid && tx.first.xid === tx.last.xid && tx.last.n === n,
    'interactive $transaction on one backend and transaction',
    tx,
  );
  // Named clients really use named prepared statements (this very query is
  // one); unnamed ones may share servers with them through a pooler.
  expect(!named || tx.last.prepared >= 1n, 'named prepared statements on the server', tx.last);

  // Interactive transaction rolled back by a throw.
  try {
    await prisma.$transaction(async (tx) => {
      await tx.item.create({ data: { client: n, name: `${name}/r`, qty: 0 } });
      await tx.item.update({ where: { id: created.id }, data: { qty: 0 } });
      throw new Rollback('roll back');
    });
    throw new Error('rolled back $transaction resolved');
  } catch (e) {
    if (!(e instanceof Rollback)) throw e;
  }
  const rolledBack = await prisma.item.findUnique({ where: { name: `${name}/r` } });
  expect(rolledBack === null, 'row of the rolled back $transaction', rolledBack);
  const kept = await prisma.item.findUnique({ where: { id: created.id } });
  expect(kept && kept.qty === i + 99, 'update of the rolled back $transaction', kept);

  // Batch transaction.
  const [deleted, zeroed, left] = await prisma.$transaction([
    prisma.item.delete({ where: { name: `${name}/a` } }),
    prisma.item.update({ where: { id: created.id }, data: { qty: 0 } }),
    prisma.item.count({ where: mine }),
  ]);
  expect(deleted.id === tx.a.id && zeroed.qty === 0 && left === 1, 'batch $transaction', [deleted, zeroed, left]);

  const gone = await prisma.item.delete({ where: { id: created.id } });
  expect(gone.id === created.id, 'delete', gone);
  const none = await prisma.item.findMany({ where: mine });
  expect(none.length === 0, 'findMany after delete', none);
}

async function client(n) {
  const named = n % 2 === 1;
  const prisma = prismaClient(named);
  try {
    for (let i = 0; i < QUERIES; i++) {
      try {
        await iteration(prisma, n, i, named);
      } catch (e) {
        throw new Error(`client ${n} (${named ? 'named' : 'unnamed'} statements) iteration ${i}: ${e?.stack ?? e}`);
      }
    }
  } finally {
    await prisma.$disconnect();
  }
}

async function setup() {
  const prisma = prismaClient(false);
  try {
    await prisma.$executeRawUnsafe(
      `CREATE TABLE IF NOT EXISTS prisma_items (
         id serial PRIMARY KEY,
         client int NOT NULL,
         name text NOT NULL UNIQUE,
         qty int NOT NULL
       )`,
    );
  } finally {
    await prisma.$disconnect();
  }
}

try {
  await setup();
} catch (e) {
  console.log(`setup: ${e?.stack ?? e}`);
  process.exit(1);
}
const started = Date.now();
const results = await Promise.allSettled([...Array(CLIENTS).keys()].map(client));
const errors = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason?.message ?? r.reason));
if (errors.length) {
  console.log(errors.join('\n\n'));
  process.exit(1);
}
console.log(`ok: ${CLIENTS} clients x ${QUERIES} iterations in ${Date.now() - started} ms`);
