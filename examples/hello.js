// Handler mode: loaded once by a warm worker, called per request.
module.exports = async (request) => {
  const data = request.get_json() || {};
  return { message: `Hello, ${data.name || 'World'}!`, method: request.method };
};
