// Compiles the action schema the way a JavaScript producer would (Ajv, JSON Schema 2020-12, strict mode:
// unknown keywords and loose types are errors) and prints, for each document read on stdin, whether it is valid.
const Ajv2020 = require("ajv/dist/2020");
const fs = require("fs");

const schema = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
const documents = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(documents.map((document) => validate(document))));
