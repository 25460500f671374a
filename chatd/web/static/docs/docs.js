// Renders the server's own API documents (/openapi.json, /asyncapi.json) as a page: the
// routes with their parameters, bodies and answers, and the socket's frames and events.
// Every text from the documents goes into the page as text, never as markup.

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// A JSON pointer inside the document ("#/components/schemas/Send").
const resolve = (doc, ref) =>
  ref.replace(/^#\//, "").split("/").reduce((node, key) => (node ? node[key] : undefined), doc);

const typeOf = (doc, schema) => {
  if (!schema) return "any";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  for (const key of ["anyOf", "oneOf"]) {
    if (schema[key]) return schema[key].map((s) => typeOf(doc, s)).join(" | ");
  }
  if (schema.type === "array") return `${typeOf(doc, schema.items)}[]`;
  return schema.type || "object";
};

// The properties of an object schema, one line each, nested objects one level deep.
const renderSchema = (doc, schema, depth = 0, seen = new Set()) => {
  const box = el("div", "schema");
  if (!schema) return box;
  if (schema.$ref) {
    if (seen.has(schema.$ref) || depth > 2) {
      box.append(el("span", "type", schema.$ref.split("/").pop()));
      return box;
    }
    const next = new Set(seen).add(schema.$ref);
    return renderSchema(doc, resolve(doc, schema.$ref), depth, next);
  }
  if (schema.allOf) {
    for (const part of schema.allOf) box.append(renderSchema(doc, part, depth, seen));
    return box;
  }
  const required = new Set(schema.required || []);
  const props = schema.properties || {};
  if (!Object.keys(props).length) {
    box.append(el("span", "type", typeOf(doc, schema)));
    return box;
  }
  for (const [name, prop] of Object.entries(props)) {
    const line = el("div");
    line.append(el("span", "name", name), el("span", "req", required.has(name) ? "*" : ""));
    line.append(": ", el("span", "type", typeOf(doc, prop)));
    if (prop.description) line.append(" — ", prop.description);
    box.append(line);
    const inner = prop.$ref ? resolve(doc, prop.$ref) : prop;
    if (depth < 1 && inner && inner.properties) box.append(renderSchema(doc, prop, depth + 1, seen));
  }
  return box;
};

const renderOpenApi = (section, doc) => {
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const card = el("article", "op");
      const title = el("h3");
      title.append(el("span", `method ${method}`, method.toUpperCase()), path);
      card.append(title, el("p", "summary", op.summary || ""));
      if (op.description) card.append(el("p", "", op.description));
      const params = op.parameters || [];
      if (params.length) {
        card.append(el("div", "label", "Parameters"));
        for (const p of params) {
          const line = el("div", "schema");
          line.append(el("span", "name", p.name), el("span", "req", p.required ? "*" : ""));
          line.append(` (${p.in}): `, el("span", "type", typeOf(doc, p.schema)));
          if (p.description) line.append(" — ", p.description);
          card.append(line);
        }
      }
      const body = op.requestBody && op.requestBody.content;
      if (body) {
        for (const [type, media] of Object.entries(body)) {
          card.append(el("div", "label", `Body (${type})`), renderSchema(doc, media.schema));
        }
      }
      card.append(el("div", "label", "Answers"));
      for (const [status, answer] of Object.entries(op.responses || {})) {
        const line = el("div");
        line.append(el("span", "status", status), answer.description || "");
        card.append(line);
        const json = answer.content && answer.content["application/json"];
        if (json && json.schema) card.append(renderSchema(doc, json.schema));
      }
      section.append(card);
    }
  }
};

const renderAsyncApi = (section, doc) => {
  section.append(el("p", "", doc.info.description || ""));
  for (const opName of ["send", "receive"]) {
    const op = doc.operations[opName];
    section.append(el("h3", "", op.title));
    for (const ref of op.messages) {
      const message = resolve(doc, ref.$ref.replace("#/channels/chat/messages/", "#/components/messages/"));
      const card = el("article", "op");
      card.append(el("h3", "", message.title), el("p", "summary", message.summary || ""));
      card.append(renderSchema(doc, message.payload));
      section.append(card);
    }
  }
};

const load = async (url, sectionId, render) => {
  const section = document.getElementById(sectionId);
  const loading = section.querySelector(".loading");
  try {
    const answer = await fetch(url);
    if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
    render(section, await answer.json());
    loading.remove();
  } catch (error) {
    loading.className = "error";
    loading.textContent = `Could not load ${url}: ${error.message}`;
  }
};

load("../openapi.json", "http", renderOpenApi);
load("../asyncapi.json", "ws", renderAsyncApi);
