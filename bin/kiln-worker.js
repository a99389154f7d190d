#!/usr/bin/env node
// `npx kiln-worker` from a checkout: the worker's sources through tsx. An instance runs the bundle
// (`npm run build:worker`) with plain node instead.
"use strict";
require("tsx/cjs");
require("../worker/cli.ts").runCli();
