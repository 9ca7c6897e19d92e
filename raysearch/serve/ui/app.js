// The raysearch search page: plain JavaScript over the HTTP API (docs/api.md), no build step,
// nothing fetched but this service's own API.
"use strict";

(() => {
  const PAGE_SIZE = 10;
  const DEBOUNCE_MS = 150;
  const POLL_MS = 2000;
  const TERMS_SIZE = 10;
  const KEY_STORE = "raysearch.apiKey";
  const INDEX_STORE = "raysearch.index";
  const TERMINAL = new Set(["completed", "partially_completed", "failed"]);
  const TERMS_TYPES = new Set(["keyword", "boolean"]);
  const RANGE_TYPES = new Set(["integer", "float", "date"]);
  const SORT_TYPES = new Set(["keyword", "boolean", "integer", "float", "date"]);
  // The API's base: the page is served at <base>ui, so its API is at <base> (a route prefix too).
  const BASE = new URL(".", location.href);

  const $ = (id) => document.getElementById(id);
  const el = {
    keyForm: $("key-form"), key: $("api-key"), forgetKey: $("forget-key"), keyState: $("key-state"),
    message: $("message"), searchForm: $("search-form"), index: $("index-select"), q: $("q"),
    sort: $("sort-select"), mode: $("mode"), facetPanel: $("facet-panel"), noFacets: $("no-facets"),
    termsFacets: $("terms-facets"), rangeFacets: $("range-facets"), clearFilters: $("clear-filters"),
    count: $("result-count"), hits: $("hits"), prev: $("prev-page"), next: $("next-page"),
    pageInfo: $("page-info"), opsPanel: $("operations-panel"), ops: $("operations"), refreshOps: $("refresh-ops"),
  };

  const state = {
    key: sessionStorage.getItem(KEY_STORE) || "",
    index: "",
    types: {},          // typed field -> type (GET /indexes/{index} settings.fields)
    vectors: false,     // a vector field and an embedder: the words / vectors / hybrid switch
    selected: {},       // keyword or boolean field -> [values] (a terms filter each)
    ranges: {},         // number or date field -> {gte, lte} (a range filter each)
    cursors: [],        // the search_after of each page after the first
    lastHits: [],
    total: 0,
    indexSeq: 0,
    searchSeq: 0,
    searchAbort: null,
    debounce: 0,
    opsSeq: 0,
    opsTimer: 0,
    opsForbidden: false,
  };

  // ------------------------------------------------------------------ the API
  class ApiError extends Error {
    constructor(status, type, reason) {
      super(reason || `HTTP ${status}`);
      this.status = status;
      this.type = type;
    }
  }

  async function api(method, path, body, signal) {
    const headers = {Accept: "application/json"};
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(new URL(path, BASE), {
        method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "the service does not answer");
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      const err = new ApiError(response.status, error.type, error.reason);
      if (response.status === 401) askForKey();
      throw err;
    }
    return data;
  }

  const enc = encodeURIComponent;

  // ------------------------------------------------------------------ messages and the key
  function showMessage(text) {
    el.message.textContent = text;
    el.message.hidden = !text;
  }

  function askForKey() {
    showMessage(state.key
      ? "The service refused this API key (wrong, expired or revoked). Enter another one above."
      : "This service needs an API key. Enter one above (it is kept for this browser tab only).");
    el.keyForm.classList.add("wanted");
    if (document.activeElement === document.body) el.key.focus();
  }

  function showKeyState() {
    el.keyState.textContent = state.key ? `key in use: ${state.key.slice(0, 8)}…` : "no key";
    el.forgetKey.hidden = !state.key;
  }

  el.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = el.key.value.trim();
    el.key.value = "";
    if (state.key) sessionStorage.setItem(KEY_STORE, state.key); else sessionStorage.removeItem(KEY_STORE);
    el.keyForm.classList.remove("wanted");
    showMessage("");
    showKeyState();
    state.opsForbidden = false;
    loadIndexes();
  });

  el.forgetKey.addEventListener("click", () => {
    state.key = "";
    sessionStorage.removeItem(KEY_STORE);
    showKeyState();
    el.key.focus();
  });

  // ------------------------------------------------------------------ indexes
  async function loadIndexes() {
    let listing;
    try {
      listing = await api("GET", "indexes");
    } catch (err) {
      if (err.status !== 401) showMessage(`Could not list the indexes: ${err.message}`);
      fillIndexes([]);
      return;
    }
    const indexes = (listing.indexes || []).slice().sort((a, b) => a.index.localeCompare(b.index));
    fillIndexes(indexes);
    const wanted = state.index || sessionStorage.getItem(INDEX_STORE) || "";
    const names = indexes.map((entry) => entry.index);
    const chosen = names.includes(wanted) ? wanted : (names[0] || "");
    el.index.value = chosen;
    if (chosen !== state.index || !Object.keys(state.types).length) selectIndex(chosen);
  }

  function indexLabel(entry) {
    if (entry.error) return `${entry.index} (unreadable)`;
    const n = entry.documents;
    return `${entry.index} (${n.toLocaleString("en")} document${n === 1 ? "" : "s"})`;
  }

  function fillIndexes(indexes) {
    el.index.replaceChildren();
    if (!indexes.length) {
      el.index.append(new Option(el.keyForm.classList.contains("wanted") ? "(an API key is needed)" : "no index", ""));
      return;
    }
    for (const entry of indexes) {
      const option = new Option(indexLabel(entry), entry.index);
      option.disabled = Boolean(entry.error);
      el.index.append(option);
    }
  }

  async function refreshIndexCounts() {
    try {
      const listing = await api("GET", "indexes");
      for (const entry of listing.indexes || []) {
        const option = [...el.index.options].find((o) => o.value === entry.index);
        if (option) option.textContent = indexLabel(entry);
      }
    } catch (_) { /* the counts stay as they were */ }
  }

  el.index.addEventListener("change", () => selectIndex(el.index.value));

  async function selectIndex(name) {
    const seq = ++state.indexSeq;
    state.index = name;
    state.types = {};
    state.vectors = false;
    state.selected = {};
    state.ranges = {};
    state.cursors = [];
    stopOperations();
    el.termsFacets.replaceChildren();
    el.rangeFacets.replaceChildren();
    el.hits.replaceChildren();
    el.count.textContent = "";
    if (!name) {
      setupControls();
      return;
    }
    sessionStorage.setItem(INDEX_STORE, name);
    let info;
    try {
      info = await api("GET", `indexes/${enc(name)}`);
    } catch (err) {
      if (err.status !== 401) showMessage(`Could not read the index ${name}: ${err.message}`);
      return;
    }
    if (seq !== state.indexSeq) return;  // chosen again meanwhile
    const settings = info.settings || {};
    const fields = settings.fields || {};
    for (const [field, spec] of Object.entries(fields)) {
      if (spec && spec.type && spec.type !== "text") state.types[field] = spec.type;
    }
    state.vectors = Object.values(state.types).includes("vector") && Boolean(settings.embedder);
    setupControls();
    search();
    loadOperations();
  }

  // ------------------------------------------------------------------ controls
  function setupControls() {
    // sort: relevance, then every sortable typed field both ways
    el.sort.replaceChildren(new Option("relevance", "_score"));
    for (const [field, type] of Object.entries(state.types)) {
      if (!SORT_TYPES.has(type)) continue;
      el.sort.append(new Option(`${field} ↑ ascending`, JSON.stringify({[field]: "asc"})));
      el.sort.append(new Option(`${field} ↓ descending`, JSON.stringify({[field]: "desc"})));
    }
    el.mode.hidden = !state.vectors;
    if (!state.vectors) el.mode.querySelector('input[value="words"]').checked = true;
    updateModeControls();
    // range inputs are built once per index (the terms facets are rebuilt with every answer)
    el.rangeFacets.replaceChildren();
    for (const [field, type] of Object.entries(state.types)) {
      if (RANGE_TYPES.has(type)) el.rangeFacets.append(rangeFacet(field, type));
    }
    const any = Object.values(state.types).some((t) => TERMS_TYPES.has(t) || RANGE_TYPES.has(t));
    el.noFacets.hidden = any;
    updateClearFilters();
  }

  function mode() {
    const checked = el.mode.querySelector('input[name="mode"]:checked');
    return state.vectors && checked ? checked.value : "words";
  }

  function updateModeControls() {
    const ranked = mode() !== "words";  // kNN and hybrid results are ranked by score only
    el.sort.disabled = ranked;
    if (ranked) el.sort.value = "_score";
  }

  el.mode.addEventListener("change", () => {
    updateModeControls();
    search();
  });
  el.sort.addEventListener("change", () => search());
  el.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  el.q.addEventListener("input", () => {
    clearTimeout(state.debounce);
    el.hits.setAttribute("aria-busy", "true");
    state.debounce = setTimeout(() => search(), DEBOUNCE_MS);
  });
  el.q.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      const first = el.hits.querySelector("summary");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  // Up and down arrows move between the results (each result's summary is its tab stop).
  el.hits.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const summaries = [...el.hits.querySelectorAll("summary")];
    const at = summaries.indexOf(document.activeElement);
    if (at < 0) return;
    event.preventDefault();
    if (event.key === "ArrowUp" && at === 0) el.q.focus();
    else summaries[Math.max(0, Math.min(summaries.length - 1, at + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  });

  // ------------------------------------------------------------------ facets
  function rangeFacet(field, type) {
    const box = document.createElement("fieldset");
    box.className = "facet range";
    box.dataset.field = field;
    const legend = document.createElement("legend");
    legend.textContent = field;
    box.append(legend);
    const inputType = type === "date" ? "date" : "number";
    for (const [bound, words] of [["gte", "from"], ["lte", "to"]]) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = inputType;
      input.dataset.bound = bound;
      if (type === "integer") input.step = "1";
      if (type === "float") input.step = "any";
      input.setAttribute("aria-label", `${field} ${words}`);
      input.addEventListener("change", () => {
        const ranges = state.ranges[field] || (state.ranges[field] = {});
        ranges[bound] = input.value;
        search();
      });
      label.append(`${words} `, input);
      box.append(label);
    }
    const hint = document.createElement("p");
    hint.className = "hint muted";
    box.append(hint);
    return box;
  }

  function bound(field, raw, upper) {
    const type = state.types[field];
    if (type === "date") {
      const ms = Date.parse(`${raw}T00:00:00Z`);
      if (Number.isNaN(ms)) return undefined;
      return upper ? ms + 86400000 - 1 : ms;  // "to" a day includes the whole day
    }
    const n = Number(raw);
    if (!Number.isFinite(n)) return undefined;
    return type === "integer" ? (upper ? Math.floor(n) : Math.ceil(n)) : n;
  }

  // The filter of the selected buckets and ranges (but those of `except`).
  function buildFilter(except) {
    const parts = [];
    for (const [field, values] of Object.entries(state.selected)) {
      if (!values.length || field === except) continue;
      parts.push(values.length === 1 ? {term: {[field]: values[0]}} : {terms: {[field]: values}});
    }
    for (const [field, r] of Object.entries(state.ranges)) {
      const bounds = {};
      for (const name of ["gte", "lte"]) {
        if (r[name] === undefined || r[name] === "") continue;
        const value = bound(field, r[name], name === "lte");
        if (value !== undefined) bounds[name] = value;
      }
      if (Object.keys(bounds).length) parts.push({range: {[field]: bounds}});
    }
    if (!parts.length) return undefined;
    return parts.length === 1 ? parts[0] : {and: parts};
  }

  function facetSpecs() {
    const specs = {};
    for (const [field, type] of Object.entries(state.types)) {
      if (TERMS_TYPES.has(type)) specs[`terms:${field}`] = {terms: {field, size: TERMS_SIZE}};
      else if (RANGE_TYPES.has(type)) specs[`stats:${field}`] = {stats: {field}};
    }
    return Object.keys(specs).length ? specs : undefined;
  }

  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const isSelected = (field, key) => (state.selected[field] || []).some((v) => same(v, key));

  function toggleBucket(field, key) {
    const values = state.selected[field] || [];
    state.selected[field] = isSelected(field, key) ? values.filter((v) => !same(v, key)) : values.concat([key]);
    search();
  }

  function bucketButton(field, key, count) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "bucket";
    button.dataset.field = field;
    button.dataset.value = String(key);
    const pressed = isSelected(field, key);
    button.setAttribute("aria-pressed", String(pressed));
    const name = document.createElement("span");
    name.className = "key";
    name.textContent = String(key);
    const n = document.createElement("span");
    n.className = "n";
    n.textContent = count === null ? "" : count.toLocaleString("en");
    button.append(name, n);
    button.setAttribute("aria-label",
      `${field}: ${key}${count === null ? "" : `, ${count} result${count === 1 ? "" : "s"}`}`);
    button.addEventListener("click", () => toggleBucket(field, key));
    return button;
  }

  function renderFacets(facets) {
    const focused = document.activeElement && document.activeElement.classList.contains("bucket")
      ? [document.activeElement.dataset.field, document.activeElement.dataset.value] : null;
    const sections = [];
    for (const [field, type] of Object.entries(state.types)) {
      if (!TERMS_TYPES.has(type)) continue;
      const result = (facets || {})[`terms:${field}`] || {buckets: [], other: 0};
      const section = document.createElement("section");
      section.className = "facet terms";
      const title = document.createElement("h3");
      title.textContent = field;
      title.id = `facet-${field}`;
      const list = document.createElement("ul");
      list.setAttribute("aria-labelledby", title.id);
      const shown = [];
      for (const bucket of result.buckets) {
        shown.push(bucket.key);
        const item = document.createElement("li");
        item.append(bucketButton(field, bucket.key, bucket.count));
        list.append(item);
      }
      for (const key of state.selected[field] || []) {  // a selected value is always shown
        if (shown.some((k) => same(k, key))) continue;
        const item = document.createElement("li");
        item.append(bucketButton(field, key, null));
        list.append(item);
      }
      section.append(title, list);
      if (result.other) {
        const other = document.createElement("p");
        other.className = "muted";
        other.textContent = `and ${result.other.toLocaleString("en")} in other values`;
        section.append(other);
      }
      if (!list.children.length) {
        const none = document.createElement("p");
        none.className = "muted";
        none.textContent = "no values";
        section.append(none);
      }
      sections.push(section);
    }
    el.termsFacets.replaceChildren(...sections);
    for (const box of el.rangeFacets.children) {
      const field = box.dataset.field;
      const stats = (facets || {})[`stats:${field}`];
      const hint = box.querySelector(".hint");
      hint.textContent = stats && stats.count
        ? `${showValue(field, stats.min)} – ${showValue(field, stats.max)} (${stats.count.toLocaleString("en")} with a value)`
        : "no values";
    }
    if (focused) {
      const again = [...el.termsFacets.querySelectorAll(".bucket")]
        .find((b) => b.dataset.field === focused[0] && b.dataset.value === focused[1]);
      if (again) again.focus();
    }
    updateClearFilters();
  }

  function showValue(field, value) {
    if (value === null || value === undefined) return "";
    if (state.types[field] === "date") {
      const date = new Date(value);
      return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().slice(0, 10);
    }
    return typeof value === "number" ? value.toLocaleString("en") : String(value);
  }

  function updateClearFilters() {
    el.clearFilters.hidden = buildFilter() === undefined;
  }

  el.clearFilters.addEventListener("click", () => {
    state.selected = {};
    state.ranges = {};
    for (const input of el.rangeFacets.querySelectorAll("input")) input.value = "";
    search();
    el.q.focus();
  });

  // ------------------------------------------------------------------ search
  function searchBody(after, facetsOf) {
    const q = el.q.value.trim();
    const body = {q, size: PAGE_SIZE, highlight: true};
    const m = mode();
    if (m !== "words" && q && q !== "*") {
      body.hybrid = true;  // the index's embedder embeds q
      if (m === "vectors") body.rank = {linear: {weight: 1.0}};  // ranked by the kNN score alone
      body.sort = ["_score"];
    } else {
      body.sort = el.sort.value === "_score" ? ["_score"] : [JSON.parse(el.sort.value)];
    }
    const filter = buildFilter(facetsOf);
    if (filter !== undefined) body.filter = filter;
    if (facetsOf) {  // the buckets of a field with a selection, counted without its own filter
      body.size = 0;
      body.highlight = false;
      body.facets = {[`terms:${facetsOf}`]: {terms: {field: facetsOf, size: TERMS_SIZE}}};
    } else if (after) body.search_after = after;
    else {
      const facets = facetSpecs();
      if (facets) body.facets = facets;
    }
    return body;
  }

  // Buckets of a field with selected values: every value the other filters leave, so that a
  // second value can be added (values of one field are or-ed); failures keep the main answer's.
  async function disjunctiveFacets(signal) {
    const fields = Object.keys(state.selected).filter((f) => state.selected[f].length);
    const parts = await Promise.all(fields.map((field) =>
      api("POST", `indexes/${enc(state.index)}/search`, searchBody(undefined, field), signal)
        .then((answer) => answer.facets || {}, () => ({}))));
    return Object.assign({}, ...parts);
  }

  // A new query, filter, sort or mode starts again from the first page.
  function search() {
    state.cursors = [];
    runSearch();
  }

  async function runSearch() {
    clearTimeout(state.debounce);
    if (!state.index) {
      el.hits.setAttribute("aria-busy", "false");
      return;
    }
    const seq = ++state.searchSeq;
    if (state.searchAbort) state.searchAbort.abort();
    const abort = state.searchAbort = new AbortController();
    const page = state.cursors.length;
    const body = searchBody(state.cursors[page - 1]);
    el.hits.setAttribute("aria-busy", "true");
    let answer, own = {};
    try {
      [answer, own] = await Promise.all([
        api("POST", `indexes/${enc(state.index)}/search`, body, abort.signal),
        page === 0 ? disjunctiveFacets(abort.signal) : Promise.resolve({})]);
    } catch (err) {
      if (err.name === "AbortError" || seq !== state.searchSeq) return;
      el.hits.setAttribute("aria-busy", "false");
      if (err.status === 401) return;  // askForKey said it
      showMessage(err.status === 403 ? `This API key may not search ${state.index}: ${err.message}`
        : `Search failed: ${err.message}`);
      return;
    }
    if (seq !== state.searchSeq) return;
    if (el.message.textContent && !el.keyForm.classList.contains("wanted")) showMessage("");
    state.lastHits = answer.hits;
    state.total = answer.total;
    renderHits(answer, page);
    if (answer.facets !== undefined || page === 0) renderFacets(Object.assign({}, answer.facets, own));
    el.hits.setAttribute("aria-busy", "false");
  }

  el.next.addEventListener("click", () => {
    const last = state.lastHits[state.lastHits.length - 1];
    if (!last || !last.sort) return;
    state.cursors.push(last.sort);
    runSearch().then(() => el.next.hidden ? el.prev.focus() : el.next.focus());
  });
  el.prev.addEventListener("click", () => {
    state.cursors.pop();
    runSearch().then(() => el.prev.hidden ? el.next.focus() : el.prev.focus());
  });

  function renderHits(answer, page) {
    const {hits, total} = answer;
    const first = page * PAGE_SIZE + 1;
    const took = typeof answer.took_ms === "number" ? answer.took_ms.toFixed(1) : answer.took_ms;
    el.count.dataset.total = String(total);
    el.count.textContent = `${total.toLocaleString("en")} result${total === 1 ? "" : "s"} · ${took} ms`;
    el.hits.start = first;
    el.hits.replaceChildren(...hits.map((hit, i) => hitItem(hit, first + i)));
    const more = hits.length === PAGE_SIZE && first - 1 + hits.length < total && hits[hits.length - 1].sort;
    el.next.hidden = !more;
    el.prev.hidden = page === 0;
    el.pageInfo.textContent = hits.length
      ? `page ${page + 1} · ${first.toLocaleString("en")}–${(first + hits.length - 1).toLocaleString("en")} of ${total.toLocaleString("en")}`
      : (total ? `page ${page + 1}` : "no results");
  }

  const escapeHtml = (text) => String(text).replace(/[&<>"']/g,
    (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  // A highlight fragment: the stored text as it is (not escaped by the API) with the matches
  // between <em> and </em> (raysearch/search/highlight.py). Everything is escaped here but those
  // two exact tags, which become <mark> elements, always balanced.
  function highlightHtml(fragment) {
    let out = "";
    let open = false;
    for (const part of String(fragment).split(/(<em>|<\/em>)/)) {
      if (part === "<em>") {
        if (!open) out += "<mark>";
        open = true;
      } else if (part === "</em>") {
        if (open) out += "</mark>";
        open = false;
      } else {
        out += escapeHtml(part);
      }
    }
    return open ? `${out}</mark>` : out;
  }

  function clip(text, n) {
    text = String(text).replace(/\s+/g, " ").trim();
    return text.length > n ? `${text.slice(0, n).replace(/\s+\S*$/, "")} …` : text;
  }

  function hitItem(hit, rank) {
    const doc = hit.document || {};
    const highlight = hit.highlight || {};
    const item = document.createElement("li");
    item.className = "hit";
    item.dataset.id = hit.id;
    const article = document.createElement("article");
    const heading = document.createElement("h3");
    heading.id = `hit-${rank}`;
    article.setAttribute("aria-labelledby", heading.id);
    if (highlight.title && highlight.title.length) heading.innerHTML = highlightHtml(highlight.title[0]);
    else heading.textContent = typeof doc.title === "string" && doc.title ? doc.title : hit.id;
    article.append(heading);

    const meta = document.createElement("p");
    meta.className = "meta";
    const id = document.createElement("code");
    id.textContent = hit.id;
    meta.append(id);
    if (typeof hit.score === "number") meta.append(` · score ${hit.score.toFixed(3)}`);
    if (hit.ranks) {
      meta.append(` · ranks: words ${hit.ranks.text ?? "–"}, vectors ${hit.ranks.knn ?? "–"}`);
    }
    for (const [field, type] of Object.entries(state.types)) {
      if (type === "vector" || doc[field] === undefined || doc[field] === null) continue;
      const tag = document.createElement("span");
      tag.className = "tag";
      const values = Array.isArray(doc[field]) ? doc[field] : [doc[field]];
      tag.textContent = `${field}: ${values.map((v) => showValue(field, v)).join(", ")}`;
      meta.append(" ", tag);
    }
    article.append(meta);

    const snippets = Object.entries(highlight).filter(([field]) => field !== "title");
    if (snippets.length) {
      for (const [field, fragments] of snippets) {
        const p = document.createElement("p");
        p.className = "snippet";
        p.innerHTML = `<span class="field">${escapeHtml(field)}</span> `
          + fragments.map(highlightHtml).join(" <span aria-hidden=\"true\">…</span> ");
        article.append(p);
      }
    } else if (typeof doc.body === "string") {
      const p = document.createElement("p");
      p.className = "snippet";
      p.textContent = clip(doc.body, 240);
      article.append(p);
    }

    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "Stored document";
    summary.setAttribute("aria-label", `Stored document ${hit.id}`);
    const pre = document.createElement("pre");
    pre.className = "stored";
    details.append(summary, pre);
    details.addEventListener("toggle", () => {
      if (details.open && !details.dataset.loaded) loadDocument(hit.id, pre, details);
    });
    article.append(details);
    item.append(article);
    return item;
  }

  // Long vectors are cut in the view of a stored document.
  function shorten(_, value) {
    if (Array.isArray(value) && value.length > 12 && value.every((v) => typeof v === "number")) {
      return [...value.slice(0, 6), `… ${value.length} numbers`];
    }
    return value;
  }

  async function loadDocument(id, pre, details) {
    pre.textContent = "loading…";
    details.dataset.loaded = "loading";
    try {
      const answer = await api("GET", `indexes/${enc(state.index)}/documents/${enc(id)}`);
      pre.textContent = JSON.stringify(answer.document, shorten, 2);
      details.dataset.loaded = "yes";
    } catch (err) {
      delete details.dataset.loaded;
      pre.textContent = err.status === 403 ? "This API key may not read stored documents (documents.read)."
        : err.status === 404 ? "This document is gone (deleted since the search)."
        : `Could not read the document: ${err.message}`;
    }
  }

  // ------------------------------------------------------------------ bulk operations
  function stopOperations() {
    clearTimeout(state.opsTimer);
    state.opsSeq += 1;
    el.opsPanel.hidden = true;
    el.ops.replaceChildren();
  }

  async function loadOperations() {
    clearTimeout(state.opsTimer);
    const seq = ++state.opsSeq;
    const index = state.index;
    if (!index || state.opsForbidden) return;
    let page;
    try {
      page = await api("GET", `bulk-operations?index=${enc(index)}&limit=10`);
    } catch (err) {
      if (seq !== state.opsSeq) return;
      el.opsPanel.hidden = true;
      if (err.status === 403) state.opsForbidden = true;  // a key without operations.read: no panel, no retries
      return;
    }
    if (seq !== state.opsSeq || index !== state.index) return;
    const operations = page.operations || [];
    const wasActive = el.ops.querySelector('[data-active="true"]') !== null;
    el.ops.replaceChildren(...operations.map(operationItem));
    el.opsPanel.hidden = operations.length === 0;
    const active = operations.some((op) => !TERMINAL.has(op.status));
    if (active) state.opsTimer = setTimeout(loadOperations, POLL_MS);
    if (wasActive && !active) refreshIndexCounts();
  }

  el.refreshOps.addEventListener("click", () => loadOperations());

  function operationItem(op) {
    const item = document.createElement("li");
    item.className = "operation";
    item.dataset.id = op.operation_id;
    item.dataset.active = String(!TERMINAL.has(op.status));
    const status = document.createElement("span");
    status.className = `status status-${op.status}`;
    status.textContent = op.status.replace("_", " ");
    const when = document.createElement("time");
    const created = new Date(op.created_at * 1000);
    when.dateTime = created.toISOString();
    when.textContent = created.toLocaleString("en", {dateStyle: "medium", timeStyle: "medium"});
    const docs = op.documents || {};
    const batches = op.batches || {};
    const line = document.createElement("p");
    line.append(status, " ", when);
    const counts = document.createElement("p");
    counts.className = "muted";
    counts.textContent = `${(docs.indexed || 0).toLocaleString("en")} of ${(docs.total || 0).toLocaleString("en")} documents indexed`
      + (docs.failed ? `, ${docs.failed} failed` : "")
      + ` · batches ${batches.indexed || 0}/${batches.total || 0} indexed, ${batches.persisted || 0}/${batches.total || 0} persisted`;
    const progress = document.createElement("progress");
    progress.max = Math.max(1, (batches.total || 0) * 2);
    progress.value = (batches.indexed || 0) + (batches.persisted || 0);
    progress.setAttribute("aria-label", `operation ${op.operation_id}: ${op.status}`);
    item.append(line, progress, counts);
    return item;
  }

  // ------------------------------------------------------------------ start
  showKeyState();
  loadIndexes();
})();
