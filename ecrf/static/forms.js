/* ecrf form page, the browser side.
 *
 * Mirrors what the server does on save, so the page answers as the user types:
 *   - fields whose x-ecrf show_if (a JSON Schema condition on the form's data) fails are hidden
 *     and their inputs disabled (a disabled input is not sent, so the server clears the value);
 *   - x-ecrf calculate expressions are previewed from their parsed trees;
 *   - rows of repeating groups are added and removed without a page load.
 * The rules come from <script type="application/json" id="ecrf-rules"> (no inline script: the
 * CSP forbids it). The server stays the truth: it recomputes everything on save, and the page
 * works without this file (row buttons then post, and visibility follows each save).
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-ecrf-form]");
  var summary = document.getElementById("ecrf-error-summary") || document.getElementById("ecrf-conflict");
  if (summary) {
    summary.setAttribute("tabindex", "-1");
    summary.focus();
  }
  if (!form) {
    return;
  }
  var rulesElement = document.getElementById("ecrf-rules");
  var rules = rulesElement ? JSON.parse(rulesElement.textContent) : { fields: [] };

  // --- JSON values --------------------------------------------------------------------------

  function isNumber(v) {
    return typeof v === "number" && isFinite(v);
  }

  function typeOf(v) {
    if (v === null) { return "null"; }
    if (Array.isArray(v)) { return "array"; }
    if (typeof v === "number") { return Number.isInteger(v) ? "integer" : "number"; }
    return typeof v; // string, boolean, object
  }

  function sameJSON(a, b) {
    if (typeof a === "boolean" || typeof b === "boolean") { return a === b; }
    if (isNumber(a) && isNumber(b)) { return a === b; }
    if (Array.isArray(a) && Array.isArray(b)) {
      return a.length === b.length && a.every(function (x, i) { return sameJSON(x, b[i]); });
    }
    if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
      var ka = Object.keys(a), kb = Object.keys(b);
      return ka.length === kb.length && ka.every(function (k) { return k in b && sameJSON(a[k], b[k]); });
    }
    return a === b;
  }

  // Python truthiness, as the server's expression language uses it.
  function truthy(v) {
    if (v === null || v === undefined || v === false) { return false; }
    if (typeof v === "number") { return v !== 0; }
    if (typeof v === "string" || Array.isArray(v)) { return v.length > 0; }
    if (typeof v === "object") { return Object.keys(v).length > 0; }
    return true;
  }

  // --- the JSON Schema subset of show_if (build.py BROWSER_KEYWORDS) ---------------------------

  function hasType(v, t) {
    if (t === "integer") { return isNumber(v) && Math.floor(v) === v; }
    if (t === "number") { return isNumber(v); }
    var actual = typeOf(v);
    return actual === t || (t === "number" && actual === "integer");
  }

  function valid(schema, v) {
    if (schema === true) { return true; }
    if (schema === false) { return false; }
    var s = schema;
    if ("type" in s) {
      var types = Array.isArray(s.type) ? s.type : [s.type];
      if (!types.some(function (t) { return hasType(v, t); })) { return false; }
    }
    if ("const" in s && !sameJSON(s.const, v)) { return false; }
    if ("enum" in s && !s.enum.some(function (e) { return sameJSON(e, v); })) { return false; }
    if (isNumber(v)) {
      if ("minimum" in s && v < s.minimum) { return false; }
      if ("maximum" in s && v > s.maximum) { return false; }
      if ("exclusiveMinimum" in s && v <= s.exclusiveMinimum) { return false; }
      if ("exclusiveMaximum" in s && v >= s.exclusiveMaximum) { return false; }
      if ("multipleOf" in s) {
        var q = v / s.multipleOf;
        if (Math.abs(q - Math.round(q)) > 1e-9) { return false; }
      }
    }
    if (typeof v === "string") {
      var length = Array.from(v).length;
      if ("minLength" in s && length < s.minLength) { return false; }
      if ("maxLength" in s && length > s.maxLength) { return false; }
      if ("pattern" in s && !new RegExp(s.pattern, "u").test(v)) { return false; }
    }
    if (Array.isArray(v)) {
      if ("minItems" in s && v.length < s.minItems) { return false; }
      if ("maxItems" in s && v.length > s.maxItems) { return false; }
      if ("contains" in s && !v.some(function (x) { return valid(s.contains, x); })) { return false; }
      if ("items" in s && !v.every(function (x) { return valid(s.items, x); })) { return false; }
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      if ("required" in s && !s.required.every(function (k) { return k in v; })) { return false; }
      if ("properties" in s) {
        for (var key in s.properties) {
          if (key in v && !valid(s.properties[key], v[key])) { return false; }
        }
      }
      if ("dependentRequired" in s) {
        for (var trigger in s.dependentRequired) {
          if (trigger in v && !s.dependentRequired[trigger].every(function (k) { return k in v; })) { return false; }
        }
      }
    }
    if ("allOf" in s && !s.allOf.every(function (x) { return valid(x, v); })) { return false; }
    if ("anyOf" in s && !s.anyOf.some(function (x) { return valid(x, v); })) { return false; }
    if ("oneOf" in s && s.oneOf.filter(function (x) { return valid(x, v); }).length !== 1) { return false; }
    if ("not" in s && valid(s.not, v)) { return false; }
    if ("if" in s) {
      if (valid(s["if"], v)) {
        if ("then" in s && !valid(s.then, v)) { return false; }
      } else if ("else" in s && !valid(s["else"], v)) {
        return false;
      }
    }
    return true;
  }

  // --- the expression language (ecrf/rules/expression.py) -----------------------------------

  function TypeFault(message) { this.message = message; }

  function flatten(values, out) {
    out = out || [];
    values.forEach(function (v) {
      if (Array.isArray(v)) { flatten(v, out); } else if (v !== null && v !== undefined) { out.push(v); }
    });
    return out;
  }

  function numbers(values) {
    return flatten(values).map(function (v) {
      if (!isNumber(v)) { throw new TypeFault("not a number"); }
      return v;
    });
  }

  function roundHalfAway(value, digits) {
    var sign = value < 0 ? -1 : 1;
    var text = Math.abs(value).toString();
    var shifted = text.indexOf("e") >= 0 ? Math.abs(value) * Math.pow(10, digits) : Number(text + "e" + digits);
    var rounded = Math.round(shifted);
    var result = Number(rounded + "e" + (-digits));
    return sign * (isFinite(result) ? result : rounded / Math.pow(10, digits));
  }

  function toDate(v) {
    if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}/.test(v)) { return null; }
    var y = +v.slice(0, 4), m = +v.slice(5, 7), d = +v.slice(8, 10);
    var date = new Date(Date.UTC(y, m - 1, d));
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) {
      throw new TypeFault("no such date");
    }
    return { y: y, m: m, d: d, t: date.getTime() };
  }

  var FUNCTIONS = {
    sum: function (args) { var n = numbers(args); return n.length ? n.reduce(function (a, b) { return a + b; }, 0) : null; },
    mean: function (args) { var n = numbers(args); return n.length ? n.reduce(function (a, b) { return a + b; }, 0) / n.length : null; },
    count: function (args) { return flatten(args).length; },
    min: function (args) { return extreme(args, -1); },
    max: function (args) { return extreme(args, 1); },
    round: function (args) {
      var value = args[0], digits = args.length > 1 ? args[1] : 0;
      if (value === null || digits === null || !isNumber(value) || !isNumber(digits)) { return null; }
      return roundHalfAway(value, digits);
    },
    abs: function (args) { return isNumber(args[0]) ? Math.abs(args[0]) : null; },
    coalesce: function (args) { for (var i = 0; i < args.length; i++) { if (args[i] !== null) { return args[i]; } } return null; },
    days_between: function (args) {
      var a = toDate(args[0]), b = toDate(args[1]);
      return a && b ? Math.round((b.t - a.t) / 86400000) : null;
    },
    years_between: function (args) {
      var a = toDate(args[0]), b = toDate(args[1]);
      if (!a || !b) { return null; }
      return b.y - a.y - ((b.m < a.m || (b.m === a.m && b.d < a.d)) ? 1 : 0);
    }
  };

  function extreme(args, direction) {
    var values = flatten(args);
    if (!values.length) { return null; }
    var kind = typeof values[0];
    if (!values.every(function (v) { return typeof v === kind && (kind === "number" || kind === "string"); })) {
      throw new TypeFault("mixed values");
    }
    return values.reduce(function (a, b) { return (direction > 0 ? b > a : b < a) ? b : a; });
  }

  function lookup(data, path) {
    var value = data;
    path.forEach(function (part) { value = get(value, part); });
    return value === undefined ? null : value;
  }

  function get(value, part) {
    if (Array.isArray(value)) { return value.map(function (row) { return get(row, part); }); }
    if (value !== null && typeof value === "object") { return part in value ? value[part] : null; }
    return null;
  }

  function ev(node, data) {
    var kind = node[0], a, b;
    switch (kind) {
      case "lit": return node[1];
      case "name": return lookup(data, node[1]);
      case "neg": a = ev(node[1], data); return isNumber(a) ? -a : null;
      case "not": a = ev(node[1], data); return a === null ? null : !truthy(a);
      case "and":
        a = ev(node[1], data);
        if (a === false) { return false; }
        b = ev(node[2], data);
        if (b === false) { return false; }
        return a === null || b === null ? null : truthy(a) && truthy(b);
      case "or":
        a = ev(node[1], data);
        if (a === true) { return true; }
        b = ev(node[2], data);
        if (b === true) { return true; }
        return a === null || b === null ? null : truthy(a) || truthy(b);
      case "arith":
        a = ev(node[2], data); b = ev(node[3], data);
        if (a === null || b === null) { return null; }
        if (!isNumber(a) || !isNumber(b)) { throw new TypeFault("arithmetic on a non-number"); }
        switch (node[1]) {
          case "+": return a + b;
          case "-": return a - b;
          case "*": return a * b;
          default: return b === 0 ? null : a / b;
        }
      case "cmp":
        a = ev(node[2], data); b = ev(node[3], data);
        if (node[1] === "==" || node[1] === "!=") {
          var same = (a === null || b === null) ? a === b : sameJSON(a, b);
          return node[1] === "==" ? same : !same;
        }
        if (a === null || b === null) { return null; }
        if (isNumber(a) !== isNumber(b) || (typeof a === "object") || (typeof b === "object")) {
          throw new TypeFault("cannot compare");
        }
        switch (node[1]) {
          case "<": return a < b;
          case "<=": return a <= b;
          case ">": return a > b;
          default: return a >= b;
        }
      case "call":
        if (node[1] === "if") {
          return ev(node[2][0], data) === true ? ev(node[2][1], data) : ev(node[2][2], data);
        }
        return FUNCTIONS[node[1]](node[2].map(function (arg) { return ev(arg, data); }));
      default:
        throw new TypeFault("unknown node");
    }
  }

  function evaluate(tree, data) {
    try {
      var value = ev(tree, data);
      return value === undefined ? null : value;
    } catch (fault) {
      if (fault instanceof TypeFault || fault instanceof RangeError) { return null; }
      throw fault;
    }
  }

  // --- reading the page ---------------------------------------------------------------------

  function byName(scope, name) {
    return Array.prototype.filter.call(scope.querySelectorAll("[name]"), function (el) {
      return el.name === name;
    });
  }

  function readInput(rule, scope, name) {
    var els = byName(scope, name);
    var el = els[0];
    var text;
    switch (rule.kind) {
      case "choice":
        var key = null;
        els.forEach(function (e) {
          if (e.tagName === "SELECT" || (e.type === "radio" && e.checked)) { key = e.value; }
        });
        return choiceValue(rule, key);
      case "choices":
        var ticked = els.filter(function (e) { return e.checked; }).map(function (e) { return e.value; });
        var values = (rule.choices || []).filter(function (c) { return ticked.indexOf(c[0]) >= 0; })
          .map(function (c) { return c[1]; });
        return values.length ? values : undefined;
      case "partial-date":
        var year = (byName(scope, name + "-year")[0] || {}).value || "";
        var month = (byName(scope, name + "-month")[0] || {}).value || "";
        var day = (byName(scope, name + "-day")[0] || {}).value || "";
        year = year.trim();
        if (!/^\d{4}$/.test(year) || (day && !month)) { return undefined; }
        return year + (month ? "-" + month + (day ? "-" + day : "") : "");
      case "integer":
        text = el ? el.value.trim() : "";
        return /^[+-]?\d+$/.test(text) ? parseInt(text, 10) : undefined;
      case "number":
        text = el ? el.value.trim().replace(",", ".") : "";
        return /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text) ? parseFloat(text) : undefined;
      case "json":
        text = el ? el.value.trim() : "";
        if (!text) { return undefined; }
        try { return JSON.parse(text); } catch (e) { return undefined; }
      default:
        text = el ? el.value.replace(/\r\n?/g, "\n").trim() : "";
        return text === "" ? undefined : text;
    }
  }

  function choiceValue(rule, key) {
    if (key === null || key === "") { return undefined; }
    var found = (rule.choices || []).filter(function (c) { return c[0] === key; })[0];
    return found ? found[1] : undefined;
  }

  function readGroup(rule, box) {
    var rows = [];
    box.querySelectorAll("tbody[data-rows] > tr[data-row]").forEach(function (tr) {
      var row = {};
      (rule.columns || []).forEach(function (column) {
        var cell = tr.querySelector('td[data-column="' + column.name + '"]');
        if (!cell) { return; }
        var value = readInput(column, cell, tr.id + "-" + column.attr);
        if (value !== undefined) { row[column.name] = value; }
      });
      if (Object.keys(row).length) { rows.push(row); }
    });
    return rows.length ? rows : undefined;
  }

  function boxOf(rule) {
    return form.querySelector('[data-field="' + rule.name + '"]');
  }

  function read(rule, box) {
    if (!box) { return undefined; }
    var flag = box.querySelector("select[data-missing-flag]");
    if (flag && flag.value) { return undefined; }
    if (box.hasAttribute("data-value")) {
      var stored = JSON.parse(box.getAttribute("data-value"));
      return stored === null ? undefined : stored;
    }
    if (rule.kind === "group") { return readGroup(rule, box); }
    return readInput(rule, box, rule.attr);
  }

  // --- applying the rules -------------------------------------------------------------------

  function setHidden(box, hide) {
    if (box.hidden === hide) { return; }
    box.hidden = hide;
    box.querySelectorAll("input, select, textarea, fieldset, button").forEach(function (el) {
      el.disabled = hide;
    });
  }

  function asType(rule, value) {
    if (typeof value === "boolean" || !isNumber(value)) { return value; }
    if (rule.type === "integer") { return roundHalfAway(value, 0); }
    if (rule.type === "number" && rule.decimals !== null && rule.decimals !== undefined) {
      return roundHalfAway(value, rule.decimals);
    }
    return value;
  }

  function display(rule, value) {
    if (value === undefined || value === null) { return "—"; }
    var label = (rule.choices || []).filter(function (c) { return sameJSON(c[1], value); })[0];
    if (label) { return label[2]; }
    if (typeof value === "boolean") { return value ? "Yes" : "No"; }
    if (isNumber(value)) { return String(value) + (rule.unit ? " " + rule.unit : ""); }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function update() {
    var boxes = {};
    var work = {};
    rules.fields.forEach(function (rule) {
      var box = boxes[rule.name] = boxOf(rule);
      if (rule.kind === "calculated") { return; }
      // Read even a hidden field: its condition prunes it below, as derive() does on the server.
      var value = read(rule, box);
      if (value !== undefined) { work[rule.name] = value; }
    });
    var hidden = {};
    rules.fields.forEach(function (rule) {
      if (!("show_if" in rule)) { return; }
      var box = boxes[rule.name];
      var hide;
      if (rule.show_if === null) {
        hide = box ? box.hidden : false; // a condition only the server evaluates: keep its verdict
      } else {
        try { hide = !valid(rule.show_if, work); } catch (e) { hide = box ? box.hidden : false; }
      }
      if (hide) {
        hidden[rule.name] = true;
        delete work[rule.name];
      }
    });
    rules.fields.forEach(function (rule) {
      if (!rule.calc) { return; }
      var value = evaluate(rule.calc, work);
      if (value === null || hidden[rule.name]) { delete work[rule.name]; } else { work[rule.name] = asType(rule, value); }
    });
    rules.fields.forEach(function (rule) {
      var box = boxes[rule.name];
      if (!box) { return; }
      if ("show_if" in rule && rule.show_if !== null) { setHidden(box, !!hidden[rule.name]); }
      if (rule.calc) {
        var output = box.querySelector("output");
        if (output) {
          var text = display(rule, work[rule.name]);
          if (output.textContent !== text) { output.textContent = text; }
        }
      }
      var flag = box.querySelector("select[data-missing-flag]");
      if (flag) { box.classList.toggle("is-missing", !!flag.value); }
    });
    form.querySelectorAll("section.form-section").forEach(function (section) {
      var fields = section.querySelectorAll(":scope > .field");
      section.hidden = fields.length > 0 && Array.prototype.every.call(fields, function (f) { return f.hidden; });
    });
  }

  // --- repeating groups ---------------------------------------------------------------------

  function addRow(button) {
    var group = button.closest("fieldset.group");
    var template = group.querySelector("template[data-row-template]");
    var body = group.querySelector("tbody[data-rows]");
    var next = 0;
    body.querySelectorAll("tr[data-row]").forEach(function (tr) {
      var match = /-(\d+)$/.exec(tr.id);
      if (match) { next = Math.max(next, parseInt(match[1], 10) + 1); }
    });
    var number = body.querySelectorAll("tr[data-row]").length + 1;
    body.insertAdjacentHTML("beforeend", template.innerHTML
      .replace(/__index__/g, String(next)).replace(/__number__/g, String(number)));
    var rows = body.querySelectorAll("tr[data-row]");
    var first = rows[rows.length - 1].querySelector("input, select, textarea");
    if (first) { first.focus(); }
    update();
  }

  function removeRow(button) {
    var row = button.closest("tr[data-row]");
    var group = button.closest("fieldset.group");
    row.parentNode.removeChild(row);
    var add = group.querySelector("[data-add-row]");
    if (add) { add.focus(); }
    update();
  }

  form.addEventListener("click", function (event) {
    var target = event.target.closest("[data-add-row], [data-remove-row]");
    if (!target || !form.contains(target)) { return; }
    event.preventDefault();
    if (target.hasAttribute("data-add-row")) { addRow(target); } else { removeRow(target); }
  });
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();

  // Exposed for tests and curious developers: the same evaluators the page uses.
  window.ecrfForms = { valid: valid, evaluate: evaluate, update: update };
}());
