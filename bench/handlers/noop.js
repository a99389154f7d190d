// The WORKER_HANDLER of the RSS run: no work of its own, so whatever memory grows is the worker's.
exports.handle = async function handle() {};
