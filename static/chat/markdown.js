// Agent Markdown to safe DOM: marked renders, DOMPurify sanitizes.
// Raw HTML in the source is shown as text, never parsed; links open safely;
// images are shown as links (a browser fetches an image with no click, and its
// URL can carry the conversation to any host).

import { Marked } from "../vendor/marked-18.2.1/marked.esm.js";
import DOMPurify from "../vendor/dompurify-3.4.18/purify.es.mjs";

const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    // Inline and block HTML written by an agent is displayed, not interpreted.
    html({ text }) {
      return escapeHtml(text);
    },
    image({ href, text, tokens }) {
      const label = tokens ? this.parser.parseInline(tokens, this.parser.textRenderer) : text;
      const url = escapeHtml(String(href ?? ""));
      return `<a href="${url}" class="image-link" title="${url}">Image: ${escapeHtml(label || String(href ?? ""))}</a>`;
    },
  },
});

const purifier = DOMPurify(window);
purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "picture", "source", "video", "audio"],
  FORBID_ATTR: ["style"],
  RETURN_DOM_FRAGMENT: true,
};

/** A sanitized DocumentFragment for `source`. */
export function renderMarkdown(source) {
  const html = marked.parse(String(source ?? ""));
  return purifier.sanitize(html, PURIFY_OPTIONS);
}

/** Replace `element`'s children with the rendered Markdown. */
export function setMarkdown(element, source) {
  element.replaceChildren(renderMarkdown(source));
  for (const table of element.querySelectorAll("table")) {
    // Wide tables scroll inside their own box on a narrow screen.
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
}
