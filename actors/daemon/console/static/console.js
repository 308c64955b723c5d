// orchestrord console: the live view of a job (server-sent events) and cancel without
// leaving the page. Everything else works without this file. Model output is put in
// the page with textContent only: it is never parsed as HTML.
"use strict";
(function () {
  var seq = 0; // the order things appeared in, for people and tests alike

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function ms(value) {
    if (typeof value !== "number") return "–";
    return value >= 1000 ? (value / 1000).toFixed(2) + " s" : Math.round(value) + " ms";
  }

  function roundBox(container, ev) {
    var id = "live-round-" + ev.round_index;
    var box = document.getElementById(id);
    if (box) return box;
    box = el("section", "round");
    box.id = id;
    box.dataset.round = ev.round;
    var heading = el("h3", null, (ev.round_index + 1) + ". " + ev.round);
    heading.id = id + "-h";
    box.setAttribute("aria-labelledby", heading.id);
    box.appendChild(heading);
    box.appendChild(el("div", "cards"));
    container.appendChild(box);
    return box;
  }

  function replyCard(reply) {
    var card = el("article", "reply s-" + reply.status);
    card.dataset.model = reply.model;
    card.dataset.seq = String(++seq);
    var title = el("h4", null, reply.model + " ");
    title.appendChild(el("span", "status s-" + reply.status, reply.status));
    card.appendChild(title);
    var usage = reply.usage ? reply.usage.input_tokens + " in / " + reply.usage.output_tokens + " out" : "–";
    card.appendChild(el("p", "facts", ms(reply.latency_ms) + " · " + usage));
    if (reply.error) card.appendChild(el("p", "error", reply.error.code + ": " + reply.error.message));
    if (reply.text) card.appendChild(el("pre", "text", reply.text));
    return card;
  }

  function table(headers, rows) {
    var t = el("table");
    var head = el("tr");
    headers.forEach(function (h) { var th = el("th", null, h); th.scope = "col"; head.appendChild(th); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (cell) { tr.appendChild(el("td", null, cell)); });
      body.appendChild(tr);
    });
    t.appendChild(body);
    var wrap = el("div", "scroll"); wrap.appendChild(t);
    return wrap;
  }

  function outcome(box, result) {
    box.textContent = "";
    var agreement = result.agreement || {};
    if (result.escalations && result.escalations.length) {
      box.appendChild(el("h3", null, "Gates and escalations"));
      box.appendChild(table(["Stage", "Confidence", "Threshold", "Went to"], result.escalations.map(function (e) {
        return [e.stage, e.confidence, e.threshold, e.to];
      })));
    }
    if (agreement.clusters && agreement.clusters.length) {
      box.appendChild(el("h3", null, "Agreement map"));
      var score = typeof agreement.score === "number" ? Math.round(agreement.score * 100) + "%" : "–";
      var dissent = (agreement.dissenters || []).length ? "; dissenting: " + agreement.dissenters.join(", ") : "";
      box.appendChild(el("p", null, "Agreement with the final answer: " + score + dissent));
      box.appendChild(table(["Models", "Their answer"], agreement.clusters.map(function (c) {
        return [c.models.join(", "), c.answer];
      })));
    }
    if (result.error) box.appendChild(el("p", "error", result.error.code + ": " + result.error.message));
    var more = el("p");
    var link = el("a", null, "The whole record of this job");
    link.href = window.location.pathname;
    more.appendChild(link);
    box.appendChild(more);
  }

  function live() {
    var box = document.getElementById("live");
    if (!box || !box.dataset.events || !window.EventSource) return;
    var record = document.getElementById("record");
    if (record) record.hidden = true;
    var state = document.getElementById("live-state");
    var rounds = document.getElementById("live-rounds");
    var finalBox = document.getElementById("live-final-box");
    var final = document.getElementById("live-final");
    var done = false;
    state.textContent = "Running…";
    var source = new EventSource(box.dataset.events);
    source.onmessage = function (message) {
      var ev = JSON.parse(message.data);
      if (ev.type === "round_started") {
        roundBox(rounds, ev);
        state.textContent = "Stage " + (ev.round_index + 1) + ": " + ev.round + "…";
      } else if (ev.type === "reply" && ev.reply) {
        roundBox(rounds, ev).querySelector(".cards").appendChild(replyCard(ev.reply));
      } else if (ev.type === "delta") {
        finalBox.hidden = false;
        if (!final.dataset.firstSeq) final.dataset.firstSeq = String(++seq);
        final.textContent += ev.text || "";
      } else if (ev.type === "reset") {
        final.textContent = "";
      } else if (ev.type === "done") {
        done = true;
        source.close();
        var result = ev.result || {};
        if (typeof result.answer === "string") {
          finalBox.hidden = false;
          if (!final.dataset.firstSeq) final.dataset.firstSeq = String(++seq);
          final.textContent = result.answer;
        }
        state.textContent = "Finished: " + result.status;
        box.dataset.done = result.status || "error";
        var status = document.getElementById("job-status");
        if (status) { status.textContent = result.status; status.className = "status s-" + result.status; }
        var cancel = document.getElementById("cancel-form");
        if (cancel) cancel.hidden = true;
        outcome(document.getElementById("live-outcome"), result);
      }
    };
    source.onerror = function () {
      if (!done) state.textContent = "Connection lost; reconnecting…";
    };
  }

  function cancelInPlace() {
    var form = document.getElementById("cancel-form");
    if (!form || !window.fetch) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var state = document.getElementById("live-state");
      state.textContent = "Cancelling…";
      window.fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": form.elements.csrf.value },
      }).then(function (response) {
        if (!response.ok) state.textContent = "The job could not be cancelled (it may have finished).";
      });
    });
  }

  function selectShareLink() {
    var share = document.getElementById("share");
    if (share) share.addEventListener("focus", function () { share.select(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    cancelInPlace();
    selectShareLink();
  });
})();
