// validate.js checks Teams messages with Microsoft's own Adaptive Card
// parser, the npm package adaptivecards@3.0.6, which runs in Node without a
// DOM. No version of that package ships the Adaptive Card JSON schema, so
// the parser is the reference.
//
// Usage: STAIRHOOK_ADAPTIVECARDS=<extracted package folder> node validate.js [path ...]
//
// Each path (or "-", or stdin when there is none) holds one whole message
// {"type":"message","attachments":[{contentType, content}]}, or one card
// {"type":"AdaptiveCard",...}. A message's envelope must be what a Teams
// Workflows webhook takes; either way the card must be an AdaptiveCard 1.5
// with our $schema, and it must pass three checks:
//
//  1. the parser, targeting 1.5, logs no event at all while parsing or
//     serializing it (unknown element or action type, invalid enum value,
//     property newer than 1.5, ...);
//  2. validateProperties() reports no event (an Action.OpenUrl without
//     url, ...);
//  3. everything in our card survives toJSON: the parser drops what it
//     does not know without a word, so each key and value of ours must be
//     in its output and equal there, but for what it changes legitimately:
//     - key order, and keys it adds (only ours are looked at);
//     - the case of an enum value: it writes its own names ("Bolder" for
//       our "bolder"), and Adaptive Card enum values are case-insensitive;
//     - a key it drops because the value is that property's default
//       ("separator": false), but only when the property is one it knows,
//       for the type of the object holding it, and it would write exactly
//       our value for it (so "isSubtle": "no", read as the default false,
//       still fails).
//     An empty list is never taken for a default: toJSON drops every empty
//     list ("body": [], "inlines": []) whether it knows the key or not, so
//     an empty list fails, and our builder sends none. Nor is a shorthand
//     taken for its long form: an inline given as a bare string comes back
//     as a TextRun object, and fails.
//
// The parser lets through a TextRun without text, a RichTextBlock without
// inlines and a link that is not https; the Go tests' checkMessage refuses
// those.
//
// One JSON report per input is written to stdout, one a line, in order:
// {"input": "...", "ok": true|false, "problems": [{"phase", "event", "message", "path"?}]}.
// Exit status: 0 when every input is ok, 1 when any is not, 2 when the
// package cannot be loaded or is not the pinned version.
"use strict";

const fs = require("fs");
const path = require("path");

const pinnedVersion = "3.0.6";
const cardContentType = "application/vnd.microsoft.card.adaptive";
const cardSchema = "http://adaptivecards.io/schemas/adaptive-card.json";
const cardVersion = "1.5";

function loadParser() {
	const dir = process.env.STAIRHOOK_ADAPTIVECARDS;
	if (!dir) {
		throw new Error("STAIRHOOK_ADAPTIVECARDS is not set (the extracted npm package adaptivecards@" + pinnedVersion + ")");
	}
	const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
	if (pkg.name !== "adaptivecards" || pkg.version !== pinnedVersion) {
		throw new Error(dir + " holds " + pkg.name + "@" + pkg.version + ", not adaptivecards@" + pinnedVersion);
	}
	return require(path.resolve(dir, "dist", "adaptivecards.js"));
}

// checkEnvelope returns the card of a message, or the input itself when it
// is a card, and the envelope's problems.
function checkEnvelope(input, problems) {
	const bad = (message) => problems.push({ phase: "Envelope", event: "InvalidEnvelope", message });
	if (!isObject(input)) {
		bad("not a JSON object");
		return undefined;
	}
	let card = input;
	if (input.type !== "AdaptiveCard") {
		if (input.type !== "message") {
			bad(`type is ${JSON.stringify(input.type)}: neither "message" nor "AdaptiveCard"`);
			return undefined;
		}
		unknownKeys(input, ["type", "attachments"], "", bad);
		if (!Array.isArray(input.attachments) || input.attachments.length !== 1) {
			bad("attachments is not a list of exactly one attachment");
			return undefined;
		}
		const a = input.attachments[0];
		if (!isObject(a)) {
			bad("attachments[0] is not an object");
			return undefined;
		}
		unknownKeys(a, ["contentType", "contentUrl", "content"], "attachments[0].", bad);
		if (a.contentType !== cardContentType) {
			bad(`attachments[0].contentType is ${JSON.stringify(a.contentType)}, not "${cardContentType}"`);
		}
		if (a.contentUrl !== undefined && a.contentUrl !== null) {
			bad("attachments[0].contentUrl is set: the card must be inline");
		}
		card = a.content;
	}
	if (!isObject(card)) {
		bad("the card is not a JSON object");
		return undefined;
	}
	for (const [key, want] of [["type", "AdaptiveCard"], ["version", cardVersion], ["$schema", cardSchema]]) {
		if (card[key] !== want) {
			bad(`card ${key} is ${JSON.stringify(card[key])}, not ${JSON.stringify(want)}`);
		}
	}
	return card;
}

function unknownKeys(obj, known, prefix, bad) {
	for (const key of Object.keys(obj)) {
		if (!known.includes(key)) {
			bad(`unknown envelope property "${prefix}${key}"`);
		}
	}
}

function isObject(v) {
	return typeof v === "object" && v !== null && !Array.isArray(v);
}

function events(AC, list, problems) {
	for (const e of list) {
		problems.push({ phase: AC.ValidationPhase[e.phase], event: AC.ValidationEvent[e.event], message: e.message });
	}
}

function contextEvents(ctx) {
	const out = [];
	for (let i = 0; i < ctx.eventCount; i++) {
		out.push(ctx.getEventAt(i));
	}
	return out;
}

// Survival compares our card with the parser's toJSON output.
class Survival {
	constructor(AC, problems) {
		this.AC = AC;
		this.problems = problems;
	}

	lost(where, message) {
		this.problems.push({ phase: "ToJSON", event: "Dropped", message, path: where });
	}

	// typed is the parser's object for a JSON object: the card at the root,
	// else the element or action its "type" names; undefined for objects
	// without a type, whose keys must all survive as they are.
	typed(obj, where) {
		if (where === "") {
			return new this.AC.AdaptiveCard();
		}
		if (typeof obj.type !== "string") {
			return undefined;
		}
		const r = this.AC.GlobalRegistry;
		const v = this.AC.Versions.v1_5;
		return r.elements.createInstance(obj.type, v) || r.actions.createInstance(obj.type, v);
	}

	property(typed, key) {
		if (!typed) {
			return undefined;
		}
		const s = typed.getSchema();
		for (let i = 0; i < s.getCount(); i++) {
			const p = s.getItemAt(i);
			if (p.name === key && p.isSerializationEnabled) {
				return p;
			}
		}
		return undefined;
	}

	// droppedAsDefault: the parser knows key on typed, reads value as the
	// property's default without complaint, and would write that default,
	// were it not the default, exactly as value.
	droppedAsDefault(typed, key, value) {
		const p = this.property(typed, key);
		if (!p) {
			return false;
		}
		const ctx = new this.AC.SerializationContext(this.AC.Versions.v1_5);
		const parsed = p.parse(typed, { [key]: value }, ctx);
		if (ctx.eventCount > 0 || parsed === undefined || parsed !== p.defaultValue) {
			return false;
		}
		const noDefault = Object.create(p, { defaultValue: { value: Symbol("none") } });
		const out = {};
		noDefault.toJSON(typed, out, parsed, ctx);
		return ctx.eventCount === 0 && key in out && this.same(p, value, out[key]);
	}

	same(p, ours, theirs) {
		if (ours === theirs) {
			return true;
		}
		return p instanceof this.AC.EnumProperty && typeof ours === "string" && typeof theirs === "string" &&
			ours.toLowerCase() === theirs.toLowerCase();
	}

	compare(ours, theirs, where, typed, key) {
		if (Array.isArray(ours)) {
			if (!Array.isArray(theirs) || theirs.length !== ours.length) {
				this.lost(where, `a list of ${ours.length} became ${JSON.stringify(theirs)}`.slice(0, 300));
				return;
			}
			ours.forEach((v, i) => this.compare(v, theirs[i], `${where}[${i}]`, typed, key));
			return;
		}
		if (isObject(ours)) {
			if (!isObject(theirs)) {
				this.lost(where, `an object became ${JSON.stringify(theirs)}`.slice(0, 300));
				return;
			}
			const t = this.typed(ours, where);
			for (const [k, v] of Object.entries(ours)) {
				const at = where === "" ? k : `${where}.${k}`;
				if (Object.prototype.hasOwnProperty.call(theirs, k)) {
					this.compare(v, theirs[k], at, t, k);
				} else if (Array.isArray(v) && v.length === 0) {
					this.lost(at, `the empty list "${k}" was dropped: toJSON drops every empty list, known or not, so we send none`);
				} else if (!this.droppedAsDefault(t, k, v)) {
					this.lost(at, `property "${k}" is not known to the parser${typeof ours.type === "string" ? " on " + ours.type : ""}, or its value ${JSON.stringify(v).slice(0, 100)} is not one it keeps: toJSON dropped it`);
				}
			}
			return;
		}
		if (!this.same(this.property(typed, key), ours, theirs)) {
			this.lost(where, `${JSON.stringify(ours).slice(0, 100)} became ${JSON.stringify(theirs)}`.slice(0, 300));
		}
	}
}

function check(AC, text) {
	const problems = [];
	let input;
	try {
		input = JSON.parse(text);
	} catch (e) {
		problems.push({ phase: "Envelope", event: "InvalidJSON", message: e.message });
		return problems;
	}
	const content = checkEnvelope(input, problems);
	if (!content) {
		return problems;
	}
	const card = new AC.AdaptiveCard();
	const parseCtx = new AC.SerializationContext(AC.Versions.v1_5);
	card.parse(content, parseCtx);
	events(AC, contextEvents(parseCtx), problems);
	events(AC, card.validateProperties().validationEvents, problems);
	const jsonCtx = new AC.SerializationContext(AC.Versions.v1_5);
	const theirs = card.toJSON(jsonCtx);
	events(AC, contextEvents(jsonCtx), problems);
	new Survival(AC, problems).compare(content, theirs, "", undefined, undefined);
	return problems;
}

function main() {
	let AC;
	try {
		AC = loadParser();
	} catch (e) {
		process.stderr.write("validate.js: " + e.message + "\n");
		process.exit(2);
	}
	const inputs = process.argv.length > 2 ? process.argv.slice(2) : ["-"];
	let failed = false;
	for (const input of inputs) {
		let problems;
		try {
			problems = check(AC, fs.readFileSync(input === "-" ? 0 : input, "utf8"));
		} catch (e) {
			problems = [{ phase: "Input", event: "Other", message: String(e && e.message ? e.message : e) }];
		}
		failed = failed || problems.length > 0;
		process.stdout.write(JSON.stringify({ input, ok: problems.length === 0, problems }) + "\n");
	}
	process.exitCode = failed ? 1 : 0;
}

main();
