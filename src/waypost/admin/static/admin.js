// The admin page's script: what a page does better with a script. Every page works without it.
// - the rule form is tried as you type (the server answers what "Try" would show, as JSON);
// - a suggested target fills the target field;
// - "Copy" copies a new key;
// - the overview's chart is drawn with uPlot (the table under it holds the same numbers).
"use strict";

(function () {
  var CSRF_HEADER = "X-Waypost-Request";

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function showErrors(form, fields) {
    var lists = form.querySelectorAll(".field-errors");
    for (var i = 0; i < lists.length; i++) {
      var list = lists[i];
      var name = list.id.replace(/-errors$/, "");
      clear(list);
      var messages = fields[name] || [];
      var input = form.querySelector("#" + name);
      for (var j = 0; j < messages.length; j++) list.appendChild(element("li", messages[j]));
      if (input) {
        if (messages.length) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
    }
    var general = document.getElementById("form-errors");
    if (general) {
      clear(general);
      var top = fields[""] || [];
      for (var k = 0; k < top.length; k++) general.appendChild(element("p", top[k], "error"));
    }
  }

  function showTrial(trial) {
    var body = document.getElementById("trial-body");
    if (!body) return;
    clear(body);
    if (trial.problems.length) {
      body.appendChild(element("p", "Fix the problems above to see what it does.", "error"));
      return;
    }
    if (trial.decision) {
      var p = element("p");
      p.id = "decision";
      p.appendChild(element("span", trial.sample, "path"));
      p.appendChild(document.createTextNode(": "));
      p.appendChild(element("strong", trial.decision));
      p.appendChild(document.createTextNode(trial.decided_by_rule ? " (by this rule)" : " (not by this rule)"));
      body.appendChild(p);
    }
    if (trial.findings.length) {
      var list = element("ul", null, "findings");
      for (var i = 0; i < trial.findings.length; i++) {
        var f = trial.findings[i];
        list.appendChild(element("li", f.severity + " [" + f.kind + "] " + f.message, f.severity));
      }
      body.appendChild(list);
    } else {
      body.appendChild(element("p", "No loop, chain or shadowing found.", "ok"));
    }
    if (trial.note) body.appendChild(element("p", trial.note, "muted"));
  }

  function ruleForm(form) {
    var timer = null;
    var asked = 0;
    function tryNow() {
      var data = new URLSearchParams(new FormData(form));
      data.set("intent", "try");
      var mine = ++asked;
      // form.action would be the field named "action": read the attribute.
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json" , [CSRF_HEADER]: "1" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (trial) {
          if (mine !== asked) return; // an older answer: a newer one is coming
          showErrors(form, trial.fields);
          showTrial(trial);
        })
        .catch(function () { /* the "Try" button still works */ });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(tryNow, 300);
    });
    var buttons = document.querySelectorAll("button.suggestion");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        var target = form.querySelector("#target");
        target.value = event.currentTarget.getAttribute("data-target");
        target.focus();
        tryNow();
      });
    }
  }

  function copyButtons() {
    var buttons = document.querySelectorAll("button.copy");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        var button = event.currentTarget;
        var input = document.getElementById(button.getAttribute("data-copy"));
        input.select();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () {
            document.execCommand("copy");
            done();
          });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    }
  }

  function chart() {
    var holder = document.getElementById("chart");
    var data = document.getElementById("chart-data");
    if (!holder || !data || !window.uPlot) return;
    var series = JSON.parse(data.textContent);
    var width = Math.max(280, holder.clientWidth);
    new window.uPlot(
      {
        width: width,
        height: 220,
        series: [{}, { label: "Hits", stroke: "#1f5fa8", width: 2, fill: "rgba(31,95,168,0.08)" }],
        axes: [{}, { size: 60 }],
      },
      [series.x, series.y],
      holder
    );
  }

  window.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("rule-form");
    if (form) ruleForm(form);
    copyButtons();
    chart();
  });
})();
