// Measures the browser search index (static/chat/js/search-index.js) on `count` made-up
// messages: build, seal and open times, sealed size, query times. Evaluated in a page that has
// libsodium loaded, by bench/search_browser.py and tests/browser/test_encrypted_search.py.
async (count) => {
  const { newIndex, indexDocument, sealIndex, openIndex, searchKey } = await import("/static/chat/js/search-index.js");
  const sodium = globalThis.sodium;
  const words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa " +
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu meeting lunch deploy release budget report " +
    "coffee review design server client browser search index sealed message friday monday weekend project").split(" ");
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const messages = [];
  for (let id = 1; id <= count; id++) {
    const length = 6 + Math.floor(random() * 18);
    const text = Array.from({ length }, () => words[Math.floor(random() * words.length)]).join(" ") + ` ref${id}`;
    messages.push({ id, conversation: 1, created_at: new Date(1_700_000_000_000 + id * 60_000).toISOString(),
      sender: { id: 1 + (id % 5), username: `user${id % 5}`, display_name: `User ${id % 5}` }, text });
  }
  const key = searchKey(sodium.crypto_box_keypair().privateKey);
  let started = performance.now();
  const index = newIndex();
  index.addAll(messages.map((m) => indexDocument(m, m.text)));
  const buildMs = performance.now() - started;
  started = performance.now();
  const sealed = await sealIndex(index, key);
  const sealMs = performance.now() - started;
  started = performance.now();
  const reopened = await openIndex(sealed, key);
  const openMs = performance.now() - started;
  const queries = ["deploy", "friday release", "coff", "budget report monday", "ref12345", "zulu"];
  const times = [];
  for (let round = 0; round < 5; round++) {
    for (const query of queries) {
      const t = performance.now();
      const found = reopened.search(query);
      times.push(performance.now() - t);
      if (query === "ref12345" && (found.length !== 1 || found[0].id !== 12345)) throw new Error("wrong hit");
    }
  }
  times.sort((a, b) => a - b);
  return { buildMs, sealMs, openMs, sealedBytes: sealed.sealed.length, queryMedianMs: times[Math.floor(times.length / 2)],
    queryMaxMs: times.at(-1), documents: reopened.documentCount };
}
