// People: the workspace's photos grouped by who is in them (docs/faces.md "People"). Face identity is
// off until an operator switches it on for the workspace; the page says so and how, and shows nothing else.
import { api } from "../api.js";
import { h, status } from "../dom.js";
import { problemText } from "../keys.js";
import { thumbnail } from "../thumbs.js";

function offNotice(session) {
  return h("section", { class: "notice", id: "people-off" },
    h("p", {}, "Grouping photos by the people in them is off for this workspace. It keeps a description of "
      + "each face (biometric data), so it only runs where a team has decided to use it."),
    h("p", {}, "An operator switches it on with ", h("code", {}, `feedlens faces identity on -w ${session.workspace}`),
      " and off (erasing every face description) with ", h("code", {}, `feedlens faces identity off -w ${session.workspace} --yes`), "."));
}

function personCard(person, ctx, refresh, say) {
  const label = person.name || "Someone without a name yet";
  const input = h("input", { type: "text", value: person.name || "", maxlength: "128", "aria-label": `Name of ${label}` });
  const save = h("button", { type: "button" }, "Save name");
  save.addEventListener("click", async () => {
    try {
      await api(`/v1/people/${person.id}`, { method: "PATCH", json: { name: input.value } });
      await refresh();
    } catch (error) { say(problemText(error, "Naming")); }
  });
  const forget = h("button", { type: "button", class: "button-secondary" }, "Forget this person");
  forget.addEventListener("click", async () => {
    if (!window.confirm(`Forget ${label}? Their face descriptions are erased; the photos stay.`)) return;
    try {
      await api(`/v1/people/${person.id}`, { method: "DELETE" });
      await refresh();
    } catch (error) { say(problemText(error, "Forgetting")); }
  });
  const cover = person.cover?.image_id
    ? thumbnail(person.cover.image_id, { alt: `A photo of ${label}`, loading: "lazy", width: 240, height: 180 })
    : null;
  return h("li", { class: "card person", id: `person-${person.id}` },
    h("a", { href: `#/people?person=${person.id}`, class: "image-link" }, cover, h("strong", { class: "card-title" }, label)),
    h("p", {}, `${person.images} photo${person.images === 1 ? "" : "s"}`),
    h("div", { class: "row-actions" }, input, save, forget));
}

async function renderPerson(main, person, ctx) {
  const { images } = await api(`/v1/people/${person}/images`);
  main.append(h("p", {}, h("a", { href: "#/people" }, "All people")),
    h("ul", { class: "grid" }, images.map((id) => h("li", {},
      h("a", { href: `#/image/${encodeURIComponent(id)}`, class: "image-link" },
        thumbnail(id, { alt: "A photo of this person", loading: "lazy", width: 240, height: 180 }))))));
}

export async function renderPeople(main, ctx) {
  main.append(h("h1", {}, "People"));
  const messages = h("div", { "aria-live": "polite" });
  const list = h("ul", { class: "grid people" });
  const say = (text, kind = "error") => messages.replaceChildren(status(text, kind));
  main.append(messages);
  const person = ctx.params.get("person");
  try {
    if (person) return await renderPerson(main, person, ctx);
    const refresh = async () => {
      const { people } = await api("/v1/people");
      list.replaceChildren(...people.map((p) => personCard(p, ctx, refresh, say)));
      if (!people.length) list.replaceChildren(h("li", {}, "No people found yet: find them in the photos below."));
    };
    await refresh();
    const scan = h("button", { type: "button", id: "people-scan" }, "Find people in new photos");
    scan.addEventListener("click", async () => {
      scan.disabled = true;
      say("Looking at the photos…", "info");
      try {
        const found = await api("/v1/people/scan", { method: "POST" });
        say(`${found.images} photos looked at, ${found.faces} faces added: ${found.people} people.`, "info");
        await refresh();
      } catch (error) { say(problemText(error, "Finding people")); }
      scan.disabled = false;
    });
    main.append(h("p", {}, scan), list);
  } catch (error) {
    if (error.status === 403 && error.code === "face_identity_off") main.append(offNotice(ctx.session));
    else say(problemText(error, "Loading people"));
  }
  return null;
}
