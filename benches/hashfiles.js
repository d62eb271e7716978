// The peer tool: @actions/glob's hashFiles, as `hashFiles('**')` in a workflow expression.
const glob = require('@actions/glob');
(async () => {
  const root = process.argv[2];
  process.env.GITHUB_WORKSPACE = root;
  const h = await glob.hashFiles(`${root}/**`, root);
  console.log(h);
})();
