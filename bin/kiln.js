#!/usr/bin/env node
// `npx kiln <command> --stack <stack>` from a checkout: the operator's commands (ops/) through tsx.
"use strict";
require("tsx/cjs");
require("../ops/cli.ts").runCli();
