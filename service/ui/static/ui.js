// The registry pages' only script: the metric charts of a model page and the "try it" chart
// of a version page. Data comes from data- attributes (server-rendered JSON) and from the
// public predict API; nothing is inserted as HTML. What the charts received is kept on
// window.surrogateUi so anyone (and the browser tests) can check it against the API.
(function () {
  "use strict";

  var ui = (window.surrogateUi = { plots: {}, tryIt: null, metrics: null });
  var BLUE = "#1f4e79", ORANGE = "rgba(230, 126, 34, 0.9)", RED = "#c0392b", GREY = "#8a949e";

  function readJson(element, attribute) {
    return JSON.parse(element.getAttribute(attribute));
  }

  function widthOf(element, fallback) {
    return Math.max(280, Math.floor(element.clientWidth || fallback));
  }

  // A vertical dashed line at x = value with a label, drawn on the plot's canvas.
  function verticalLine(u, value, label, dash) {
    if (value === null || value === undefined) return;
    var x = u.valToPos(value, "x", true);
    var box = u.bbox, ctx = u.ctx;
    if (x < box.left || x > box.left + box.width) return;
    ctx.save();
    ctx.strokeStyle = "#555";
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash(dash);
    ctx.beginPath();
    ctx.moveTo(x, box.top);
    ctx.lineTo(x, box.top + box.height);
    ctx.stroke();
    if (label) {
      ctx.setLineDash([]);
      ctx.fillStyle = "#333";
      ctx.font = 11 * devicePixelRatio + "px system-ui, sans-serif";
      ctx.textAlign = "left";  // uPlot leaves its axis labels' alignment on the context
      ctx.textBaseline = "alphabetic";
      ctx.fillText(label, x + 4 * devicePixelRatio, box.top + 12 * devicePixelRatio);
    }
    ctx.restore();
  }

  function horizontalLine(u, value) {
    var y = u.valToPos(value, "y", true), box = u.bbox, ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "rgba(26, 127, 55, 0.8)";
    ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(box.left, y);
    ctx.lineTo(box.left + box.width, y);
    ctx.stroke();
    ctx.restore();
  }

  // --- model page: held-out metrics across versions --------------------------------

  function metricCharts() {
    var holder = document.getElementById("metrics-charts");
    if (!holder) return;
    var chart = readJson(holder, "data-chart");
    ui.metrics = chart;
    var versions = chart.versions;
    var low = Math.min.apply(null, versions) - 0.5, high = Math.max.apply(null, versions) + 0.5;
    holder.querySelectorAll(".plot").forEach(function (element) {
      var metric = element.getAttribute("data-metric");
      var values = chart[metric];
      // The 95% interval over held-out materials, where versions stored one: a band.
      var lows = chart[metric + "_low"], highs = chart[metric + "_high"];
      var banded = Boolean(lows && lows.some(function (v) { return v !== null; }));
      var bound = function (label) {
        return { label: label, stroke: "rgba(31, 78, 121, 0.45)", width: 1, spanGaps: false,
                 value: function (u, v) { return v == null ? "—" : v.toFixed(3); },
                 points: { show: false } };
      };
      var options = {
        width: widthOf(element, 360), height: 200,
        legend: { show: true, live: true },
        cursor: { points: { size: 8 } },
        scales: { x: { time: false, range: function () { return [low, high]; } } },
        axes: [
          { values: function (u, ticks) {
              return ticks.map(function (t) { return Number.isInteger(t) ? "v" + t : ""; });
            } },
          { size: 56 },
        ],
        series: [
          { label: "version", value: function (u, v) { return v == null ? "—" : "v" + v; } },
          { label: element.getAttribute("data-label"), stroke: BLUE, width: 2, spanGaps: true,
            value: function (u, v) { return v == null ? "—" : v.toFixed(3); },
            points: { show: true, size: 7, fill: BLUE } },
        ],
        hooks: { draw: [function (u) {
          if (metric === "coverage_95") horizontalLine(u, 0.95);
          verticalLine(u, chart.production, chart.production_alias,
                       [5 * devicePixelRatio, 4 * devicePixelRatio]);
        }] },
      };
      var data = [versions, values];
      if (banded) {
        options.series.push(bound("95% interval low"), bound("95% interval high"));
        options.bands = [{ series: [3, 2], fill: "rgba(31, 78, 121, 0.15)" }];
        data.push(lows, highs);
      }
      var plot = (ui.plots[metric] = new uPlot(options, data, element));
      // Clicking a point opens that version's page.
      plot.over.addEventListener("click", function () {
        var index = plot.cursor.idx;
        if (index === null || index === undefined) return;
        window.location.href = "/ui/models/" + encodeURIComponent(chart.model) +
          "/versions/" + versions[index];
      });
    });
  }

  // --- version page: try it ---------------------------------------------------------

  function linspace(low, high, count) {
    var out = new Array(count);
    for (var i = 0; i < count; i++) out[i] = low + (high - low) * i / (count - 1);
    return out;
  }

  function band(mean, sd, sign) {
    return mean.map(function (m, i) { return m + sign * 1.96 * sd[i]; });
  }

  async function predict(url, body) {
    var response = await fetch(url, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    var payload = await response.json();
    if (!response.ok) {
      var error = payload && payload.error ? payload.error.message : response.statusText;
      throw new Error("version " + (body.version || "?") + ": " + error);
    }
    return payload;
  }

  function tryItSeries(a, b, sampleCount) {
    var series = [{ label: "strain" }];
    var line = function (label, stroke, width, dash) {
      return { label: label, stroke: stroke, width: width, dash: dash, points: { show: false } };
    };
    series.push(line("total lo", "rgba(31, 78, 121, 0.35)", 1));
    series.push(line("total hi", "rgba(31, 78, 121, 0.35)", 1));
    series.push(line("aleatoric lo", "rgba(31, 78, 121, 0.5)", 1));
    series.push(line("aleatoric hi", "rgba(31, 78, 121, 0.5)", 1));
    series.push(line("epistemic lo", ORANGE, 1));
    series.push(line("epistemic hi", ORANGE, 1));
    for (var j = 0; j < sampleCount; j++) series.push(line("sample " + (j + 1), GREY, 1));
    series.push(line("mean v" + a.version, BLUE, 2.5));
    if (b) {
      series.push(line("total lo v" + b.version, RED, 1.5, [6, 4]));
      series.push(line("total hi v" + b.version, RED, 1.5, [6, 4]));
      series.push(line("mean v" + b.version, RED, 2.5));
    }
    return series;
  }

  function tryItData(strain, a, b, sampleCount) {
    var data = [strain,
      band(a.mean, a.total_sd, -1), band(a.mean, a.total_sd, 1),
      band(a.mean, a.aleatoric_sd, -1), band(a.mean, a.aleatoric_sd, 1),
      band(a.mean, a.epistemic_sd, -1), band(a.mean, a.epistemic_sd, 1)];
    for (var j = 0; j < sampleCount; j++) {
      data.push(a.samples.map(function (row) { return row[j]; }));
    }
    data.push(a.mean);
    if (b) data.push(band(b.mean, b.total_sd, -1), band(b.mean, b.total_sd, 1), b.mean);
    return data;
  }

  function drawTryIt(config, strain, a, b, sampleCount) {
    var element = document.getElementById("try-it-chart");
    if (ui.plots.tryIt) ui.plots.tryIt.destroy();
    var domain = config.domain || {};
    var options = {
      width: widthOf(element, 900), height: 420,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ label: config.x_label }, { label: config.y_label, size: 64 }],
      series: tryItSeries(a, b, sampleCount),
      bands: [
        { series: [2, 1], fill: "rgba(31, 78, 121, 0.12)" },
        { series: [4, 3], fill: "rgba(31, 78, 121, 0.22)" },
        { series: [6, 5], fill: "rgba(230, 126, 34, 0.3)" },
      ],
      hooks: { draw: [function (u) {
        var dash = [2 * devicePixelRatio, 3 * devicePixelRatio];
        verticalLine(u, domain.min, "training domain", dash);
        verticalLine(u, domain.max, "", dash);
      }] },
    };
    ui.plots.tryIt = new uPlot(options, tryItData(strain, a, b, sampleCount), element);
  }

  // A model with covariates: {name: value} from the form's covariate inputs (null when the
  // model has none, or when one of them is not a number).
  function covariateValues(form) {
    var inputs = form.querySelectorAll("input[data-covariate]");
    if (!inputs.length) return undefined;
    var values = {};
    for (var i = 0; i < inputs.length; i++) {
      var text = inputs[i].value.trim(), value = Number(text);
      if (text === "" || !isFinite(value)) return null;
      values[inputs[i].getAttribute("data-covariate")] = value;
    }
    return values;
  }

  function describeCondition(values, config) {
    return config.covariates.map(function (c) {
      return c.name + "=" + values[c.name] + " " + c.unit;
    }).join(", ");
  }

  function tryIt() {
    var form = document.getElementById("try-it-form");
    if (!form) return;
    var config = readJson(form, "data-try-it");
    var domain = config.domain || {};
    var hasDomain = typeof domain.min === "number" && typeof domain.max === "number";
    var span = hasDomain ? domain.max - domain.min : 2;
    var low = hasDomain ? domain.min - 0.25 * span : -1;
    var high = hasDomain ? domain.max + 0.25 * span : 1;
    var round = function (x) { return Number(x.toPrecision(3)); };
    document.getElementById("strain-min").value = round(low);
    document.getElementById("strain-max").value = round(high);
    var status = document.getElementById("try-it-status");
    var chart = document.getElementById("try-it-chart");

    async function run(event) {
      if (event) event.preventDefault();
      var from = Number(document.getElementById("strain-min").value);
      var to = Number(document.getElementById("strain-max").value);
      var points = Math.round(Number(document.getElementById("strain-points").value));
      var sampleCount = Math.round(Number(document.getElementById("sample-draws").value));
      var overlay = document.getElementById("overlay-version").value;
      var covariates = covariateValues(form);
      status.classList.remove("error");
      if (!(from < to) || !(points >= 2 && points <= 2000) || !(sampleCount >= 0) ||
          covariates === null) {
        status.textContent = "Choose strain from < to, 2 to 2000 points, 0 to 20 samples" +
          (covariates === null ? " and a number for every covariate." : ".");
        status.classList.add("error");
        return;
      }
      chart.setAttribute("data-state", "loading");
      var strain = linspace(from, to, points);
      var request = { strain: strain, version: config.version };
      if (covariates) request.covariates = covariates;
      // A fixed seed: the same inputs always draw the same sample curves.
      if (sampleCount > 0) { request.draws = sampleCount; request.seed = 1; }
      var overlayRequest = overlay ? { strain: strain, version: Number(overlay) } : null;
      if (overlayRequest && covariates) overlayRequest.covariates = covariates;
      try {
        var answers = await Promise.all([
          predict(config.predict_url, request),
          overlayRequest ? predict(config.predict_url, overlayRequest) : null,
        ]);
        ui.tryIt = { url: config.predict_url, request: request, response: answers[0],
                     overlayRequest: overlayRequest, overlayResponse: answers[1] };
        drawTryIt(config, strain, answers[0], answers[1], sampleCount);
        document.getElementById("legend-overlay").hidden = !overlayRequest;
        var outside = answers[0].outside_training_domain.filter(Boolean).length;
        var where = "";
        if (covariates) {
          // One condition for every strain: its distance to the nearest tested one.
          where = " at " + describeCondition(covariates, config) + ", condition distance " +
            Number(answers[0].condition_distance[0].toPrecision(3)) +
            " from the nearest tested condition";
        }
        status.textContent = "Version " + answers[0].version + " answered " + points +
          " strains" + where + " (" + outside + " outside the training domain)" +
          (answers[1] ? "; overlay: version " + answers[1].version + "." : ".");
        chart.setAttribute("data-state", "drawn");
      } catch (error) {
        status.textContent = "Prediction failed: " + error.message;
        status.classList.add("error");
        chart.setAttribute("data-state", "failed");
      }
    }

    form.addEventListener("submit", run);
    run(null);
  }

  metricCharts();
  tryIt();
})();
