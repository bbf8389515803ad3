// Script mode: reads {"a":..,"b":..} on stdin and prints the sum.
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const { a = 0, b = 0 } = input ? JSON.parse(input) : {};
  console.log(JSON.stringify({ sum: a + b }));
});
