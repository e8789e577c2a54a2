// Loaded before require.js and the ipywidgets HTML manager (vendor/, see tools/vendor_js.py); two
// adjustments so the widgets work offline next to MathJax 3 (issue 17).
//
// 1. The manager's AMD modules (@jupyter-widgets/html-manager/dist/libembed-amd, .../controls,
//    .../base, ...) compute where their icon fonts live from their own module URL, which require.js
//    derives from the module name: map both prefixes to the vendored dist/ next to this file, so a
//    page in any folder of the book loads the fonts from the book itself, never from a CDN. (The
//    modules are defined inside embed-amd.js; nothing else is fetched through these paths.)
var require = (function () {
  var dist = document.currentScript.src.replace(/[^/]*$/, "") + "vendor/html-manager/dist";
  return {paths: {"@jupyter-widgets/html-manager/dist": dist, "@jupyter-widgets": dist}};
})();

// 2. The controls typeset their labels with MathJax 2's API (MathJax.Hub.Queue) whenever a global
//    MathJax exists; the book loads MathJax 3, which has no Hub (a TypeError per label). Give the
//    MathJax 3 object, once it is installed, a Hub.Queue that typesets the label with MathJax 3.
(function () {
  var hub = {
    Queue: function (job) {
      var element = job && job[2];
      var mathjax = window.MathJax;
      if (element && mathjax && mathjax.startup && mathjax.typesetPromise) {
        mathjax.startup.promise.then(function () { return mathjax.typesetPromise([element]); });
      }
    },
  };
  var current = window.MathJax;
  function install(value) {
    if (value && typeof value === "object" && value.version && !value.Hub) value.Hub = hub;
    return value;
  }
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = install(value); },
  });
  install(current);
})();
