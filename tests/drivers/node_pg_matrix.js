// node-postgres through a pooler in transaction mode: 8 concurrent clients
// x 30 queries, with named queries ({name, text, values}: prepared once per
// connection, then reused), unnamed parameterized queries, and a pipeline
// (several queries issued before any result is read). Exits non-zero with
// the errors on any failure.
//
// usage: node node_pg_matrix.js CONNECTION_STRING
const { Client } = require('pg');

const url = process.argv[2];
const CLIENTS = 8;
const QUERIES = 30;

async function client(n) {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    for (let i = 0; i < QUERIES; i++) {
      // Same statement name in every client, a different query in each.
      const named = await c.query({ name: 'q', text: `SELECT $1::int * ${n + 1} AS v`, values: [i] });
      if (named.rows[0].v !== i * (n + 1)) throw new Error(`named: ${JSON.stringify(named.rows)}`);
      const plain = await c.query('SELECT $1::text || $2::text AS v', [String(n), String(i)]);
      if (plain.rows[0].v !== `${n}${i}`) throw new Error(`plain: ${JSON.stringify(plain.rows)}`);
      // node-postgres queues these and writes them back to back.
      const [a, b] = await Promise.all([
        c.query({ name: 'p1', text: 'SELECT $1::int + 1 AS v', values: [i] }),
        c.query({ name: 'p2', text: 'SELECT $1::int + 2 AS v', values: [i] }),
      ]);
      if (a.rows[0].v !== i + 1 || b.rows[0].v !== i + 2) throw new Error('pipeline');
    }
  } finally {
    await c.end();
  }
}

(async () => {
  const results = await Promise.allSettled([...Array(CLIENTS).keys()].map(client));
  const errors = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
  if (errors.length) {
    console.log(errors.join('\n'));
    process.exit(1);
  }
  console.log('ok');
})();
