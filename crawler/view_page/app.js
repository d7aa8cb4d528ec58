// entrez-graph view: draws the selection embedded in #graph-data with vis-network (inlined).
// Every text from the crawl reaches the page through textContent, never as HTML.
(function () {
  "use strict";
  var body = document.body;
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var nNodes = data.nodes.length;
  var nEdges = data.edges.length;
  var big = nNodes > 800 || nEdges > 3000;
  var byId = new Map();
  var degree = new Map();
  var adjacent = new Map();
  data.nodes.forEach(function (node) {
    byId.set(node.id, node);
    degree.set(node.id, 0);
    adjacent.set(node.id, []);
  });
  data.edges.forEach(function (edge, i) {
    degree.set(edge.from, (degree.get(edge.from) || 0) + 1);
    degree.set(edge.to, (degree.get(edge.to) || 0) + 1);
    if (adjacent.has(edge.from)) adjacent.get(edge.from).push(i);
    if (adjacent.has(edge.to) && edge.to !== edge.from) adjacent.get(edge.to).push(i);
  });
  body.dataset.expectedNodes = String(nNodes);
  body.dataset.expectedEdges = String(nEdges);

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function short(text) {
    text = String(text);
    return text.length > 24 ? text.slice(0, 23) + "…" : text;
  }
  function shade(hex, factor) {
    var n = parseInt(hex.slice(1), 16);
    var r = Math.round(((n >> 16) & 255) * factor), g = Math.round(((n >> 8) & 255) * factor),
        b = Math.round((n & 255) * factor);
    return "#" + ((1 << 24) | (r << 16) | (g << 8) | b).toString(16).slice(1);
  }
  function color(db) {
    var c = data.colors[db] || "#868e96";
    return {background: c, border: shade(c, 0.7),
            highlight: {background: c, border: "#000000"}, hover: {background: c, border: "#000000"}};
  }

  // Landmarks: the centre and the best-connected records keep their labels at any zoom.
  var landmarks = new Set(data.nodes.map(function (n) { return n.id; })
    .sort(function (a, b) { return degree.get(b) - degree.get(a); }).slice(0, 10));
  if (data.center) landmarks.add(data.center);
  var nodes = new vis.DataSet(data.nodes.map(function (node) {
    var d = degree.get(node.id) || 0;
    var item = {
      id: node.id, label: short(node.label), color: color(node.db), shape: "dot",
      size: node.id === data.center ? 20 : Math.min(18, 7 + 2 * Math.sqrt(d)),
      borderWidth: node.id === data.center ? 3 : 1,
      // the hover tooltip (plain text): the record and when it was fetched (provenance)
      title: node.id + (node.label !== node.uid ? " " + node.label : "") +
        (node.props.fetched ? "\nfetched " + node.props.fetched : ""),
    };
    if (landmarks.has(node.id)) {
      item.font = {size: node.id === data.center ? 18 : 14, bold: node.id === data.center};
      item.scaling = {label: {drawThreshold: 1}};
    }
    return item;
  }));

  // Parallel links between one pair (gene_protein and gene_protein_refseq, or a link and its
  // reverse) get curves of their own, so each stays visible with its own label.
  var pairs = new Map();
  function edgeItem(edge, i, labelled) {
    var pair = edge.from < edge.to ? edge.from + "\u0000" + edge.to : edge.to + "\u0000" + edge.from;
    var k = pairs.get(pair) || 0;
    pairs.set(pair, k + 1);
    var item = {id: i, from: edge.from, to: edge.to, label: labelled ? edge.linkname : undefined,
                title: edge.linkname + (edge.fetched ? "\nfetched " + edge.fetched : "")};
    if (k > 0) {
      var clockwise = (k % 2 === 1) === (edge.from < edge.to);
      item.smooth = {enabled: true, type: clockwise ? "curvedCW" : "curvedCCW",
                     roundness: 0.2 * Math.ceil(k / 2)};
    }
    return item;
  }
  var labelsBox = document.getElementById("edge-labels");
  labelsBox.checked = nEdges <= 400;
  var edges = new vis.DataSet(data.edges.map(function (e, i) { return edgeItem(e, i, labelsBox.checked); }));

  var options = {
    // Labels appear once they would be 8 px or more on screen: a view of thousands of records
    // shows its shape first, and names as one zooms in.
    nodes: {font: {size: 12, color: "#212529", strokeWidth: 3, strokeColor: "#ffffff"},
            scaling: {label: {drawThreshold: nNodes > 150 ? 8 : 5}}},
    edges: {
      arrows: {to: {enabled: true, scaleFactor: 0.45}},
      color: {color: "#a5acb5", highlight: "#e8590c", hover: "#e8590c", opacity: 0.7},
      font: {size: 9, color: "#495057", strokeWidth: 2, align: "middle"},
      width: 1, selectionWidth: 0.5, smooth: false,
    },
    physics: {
      solver: "forceAtlas2Based",
      forceAtlas2Based: {theta: big ? 1.0 : 0.5, gravitationalConstant: -45, centralGravity: 0.008, springLength: 80,
                         springConstant: 0.08, damping: 0.5, avoidOverlap: 0.3},
      stabilization: {enabled: true, iterations: nNodes > 1500 ? 200 : big ? 300 : nNodes > 300 ? 400 : 700, updateInterval: 20, fit: true},
      minVelocity: 1,
    },
    layout: {improvedLayout: nNodes <= 150, randomSeed: 7},
    interaction: {hideEdgesOnDrag: big, hideEdgesOnZoom: big, tooltipDelay: 150},
  };
  var container = document.getElementById("graph");
  var network = new vis.Network(container, {nodes: nodes, edges: edges}, options);
  var status = document.getElementById("status");

  function report() {
    // What vis-network really draws: nodes it holds (not hidden) and edges joining two of them.
    var drawnNodes = network.body.nodeIndices.length;
    var drawnEdges = network.body.edgeIndices.filter(function (id) {
      return network.body.edges[id] && network.body.edges[id].connected;
    }).length;
    body.dataset.drawnNodes = String(drawnNodes);
    body.dataset.drawnEdges = String(drawnEdges);
    body.dataset.resources = String(performance.getEntriesByType("resource").length);
    body.dataset.blocked = String(window.entrezGraphBlocked.length);
  }
  network.on("stabilizationProgress", function (p) {
    status.textContent = "Laying out… " + Math.round(100 * p.iterations / p.total) + "%";
  });
  // Landmark labels keep about 11 px on screen whatever the zoom (up to a limit).
  function scaleLandmarks() {
    var size = Math.min(150, Math.max(12, 11 / network.getScale()));
    nodes.update(Array.from(landmarks).map(function (id) {
      return {id: id, font: {size: id === data.center ? size * 1.3 : size}};
    }));
  }
  network.on("zoom", scaleLandmarks);
  network.once("stabilizationIterationsDone", function () {
    network.setOptions({physics: false});
    scaleLandmarks();
    status.textContent = "Drag to pan, scroll to zoom, click a record for its properties.";
    body.dataset.stabilized = "1";
    network.redraw();  // synchronous: afterDrawing reports what is drawn now
  });
  network.once("afterDrawing", function () {
    report();
    body.dataset.ready = "1";
  });

  // -- legend -----------------------------------------------------------------------------
  var perDb = new Map();
  data.nodes.forEach(function (node) { perDb.set(node.db, (perDb.get(node.db) || 0) + 1); });
  var hiddenDbs = new Set();
  var legend = document.getElementById("legend");
  Array.from(perDb.entries()).sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); })
    .forEach(function (entry) {
      var db = entry[0];
      var li = el("li");
      var sw = el("span", null, "swatch");
      sw.style.background = data.colors[db] || "#868e96";
      li.appendChild(sw);
      li.appendChild(document.createTextNode(db + " (" + entry[1] + ")"));
      li.dataset.db = db;
      li.addEventListener("click", function () {
        var off = !hiddenDbs.has(db);
        if (off) hiddenDbs.add(db); else hiddenDbs.delete(db);
        li.classList.toggle("off", off);
        nodes.update(data.nodes.filter(function (n) { return n.db === db; })
          .map(function (n) { return {id: n.id, hidden: off}; }));
      });
      legend.appendChild(li);
    });

  labelsBox.addEventListener("change", function () {
    var on = labelsBox.checked;
    edges.update(data.edges.map(function (e, i) { return {id: i, label: on ? e.linkname : ""}; }));
  });

  // -- details of a record or a link ----------------------------------------------------------
  var details = document.getElementById("details");
  var FIELDS = ["db", "uid", "hops", "depth", "fetched", "name", "accession", "organism", "description",
                "journal", "year", "status"];
  function row(table, key, value) {
    if (value === undefined || value === null || value === "") return;
    var tr = el("tr");
    tr.appendChild(el("th", key));
    tr.appendChild(el("td", value));
    table.appendChild(tr);
  }
  function ncbiUrl(node) {
    return data.ncbi + encodeURIComponent(node.db) + "/" + encodeURIComponent(node.uid);
  }
  function nodeButton(id) {
    var node = byId.get(id);
    var b = el("button", id + (node && node.label !== node.uid ? " " + short(node.label) : ""), "link");
    b.type = "button";
    b.addEventListener("click", function () { select(id); });
    return b;
  }
  function showNode(id) {
    var node = byId.get(id);
    details.replaceChildren();
    details.hidden = false;
    details.dataset.key = id;
    details.appendChild(el("h2", node.label));
    var a = el("a", "Open " + id + " at NCBI ↗", "ncbi");
    a.href = ncbiUrl(node);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    details.appendChild(a);
    var table = el("table");
    var props = Object.assign({db: node.db, uid: node.uid}, node.props);
    if (node.hops !== undefined) props.hops = node.hops;
    FIELDS.forEach(function (k) { row(table, k, props[k]); });
    Object.keys(props).sort().forEach(function (k) {
      if (FIELDS.indexOf(k) < 0) row(table, k, props[k]);
    });
    details.appendChild(table);
    var links = adjacent.get(id) || [];
    details.appendChild(el("h2", "Links in this view (" + links.length + ")"));
    var ul = el("ul");
    links.slice(0, 200).forEach(function (i) {
      var e = data.edges[i];
      var li = el("li");
      var out = e.from === id;
      li.appendChild(document.createTextNode((out ? "→ " : "← ") + e.linkname +
        (e.score !== undefined ? " (score " + e.score + ")" : "") + " "));
      li.appendChild(nodeButton(out ? e.to : e.from));
      ul.appendChild(li);
    });
    if (links.length > 200) ul.appendChild(el("li", "… " + (links.length - 200) + " more"));
    details.appendChild(ul);
  }
  function showEdge(i) {
    var e = data.edges[i];
    details.replaceChildren();
    details.hidden = false;
    details.dataset.key = "link " + i;
    details.appendChild(el("h2", e.linkname));
    var table = el("table");
    row(table, "link name", e.linkname);
    row(table, "score", e.score);
    row(table, "fetched", e.fetched);
    details.appendChild(table);
    [["from", e.from], ["to", e.to]].forEach(function (p) {
      var para = el("p", p[0] + " ");
      para.appendChild(nodeButton(p[1]));
      details.appendChild(para);
    });
  }
  function select(id, focus) {
    if (!byId.has(id)) return;
    var node = byId.get(id);
    if (hiddenDbs.has(node.db)) {
      var li = legend.querySelector('li[data-db="' + CSS.escape(node.db) + '"]');
      if (li) li.click();
    }
    network.selectNodes([id]);
    if (focus !== false) {
      // pan to it; zoom in only as far as its label becomes readable
      network.focus(id, {scale: Math.max(network.getScale(), 0.9),
                         animation: big ? false : {duration: 350}});
    }
    showNode(id);
  }
  network.on("click", function (params) {
    if (params.nodes.length) showNode(params.nodes[0]);
    else if (params.edges.length) showEdge(params.edges[0]);
  });

  // -- search ----------------------------------------------------------------------------------
  var search = document.getElementById("search");
  var results = document.getElementById("results");
  var matchesLine = document.getElementById("matches");
  var haystack = data.nodes.map(function (n) {
    return [n.id, n.uid, n.label, n.props.name, n.props.accession].filter(Boolean).join("\u0000").toLowerCase();
  });
  function find(query) {
    var q = query.trim().toLowerCase();
    results.replaceChildren();
    if (!q) { matchesLine.textContent = ""; return []; }
    var found = [];
    for (var i = 0; i < haystack.length; i++) if (haystack[i].indexOf(q) >= 0) found.push(data.nodes[i].id);
    // exact uid or key first, then names that start with the query
    found.sort(function (a, b) {
      function rank(id) {
        var n = byId.get(id), name = String(n.label).toLowerCase();
        return n.uid === q || id === q ? 0 : name === q ? 1 : name.indexOf(q) === 0 ? 2 : 3;
      }
      return rank(a) - rank(b);
    });
    matchesLine.textContent = found.length === 1 ? "1 match" : found.length + " matches";
    found.slice(0, 50).forEach(function (id) {
      var li = el("li");
      li.appendChild(nodeButton(id));
      results.appendChild(li);
    });
    body.dataset.matches = String(found.length);
    return found;
  }
  search.addEventListener("input", function () { find(search.value); });
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      var found = find(search.value);
      if (found.length) select(found[0]);
    }
  });

  // #select=db:uid opens a record, #search=text searches: links to one record of a view work.
  function fromHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    if (params.get("search") !== null) {
      search.value = params.get("search");
      find(search.value);
    }
    if (params.get("select")) select(params.get("select"), loaded);
  }
  var loaded = false;  // on opening, keep the whole view in sight (no focus)
  window.addEventListener("hashchange", fromHash);
  fromHash();
  loaded = true;
})();
