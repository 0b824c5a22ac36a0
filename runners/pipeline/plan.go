package pipeline

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/razorgo/razor/config"
)

// Step is one entry of a pipeline config's `steps` list.
//
// Any string in Config, Checkpoint, the values of CfgOptions and Args may
// hold run-time references `$(steps.NAME.OUTPUT)` to an output of an
// earlier step, replaced by its value (a path) when the step starts. They
// differ from the config package's `${ EXPR }`, which is evaluated when the
// pipeline file is loaded, before any step has run.
type Step struct {
	// Name names the step in references and its work dir, <work_dir>/<name>.
	Name string `cfg:"name,required"`
	// Tool names the command the step runs, a key of the Runner's Tools:
	// train, search or test with tools/cli's built-in tools.
	Tool string `cfg:"tool,required"`
	// Config is the tool's CONFIG argument; write {{fileDirname}}/x.yaml for
	// a file beside the pipeline config. Required, except for a tool that
	// takes none (make_mnist_det).
	Config string `cfg:"config"`
	// Checkpoint is the CHECKPOINT argument of search and test.
	Checkpoint string `cfg:"checkpoint"`
	// CfgOptions are the step's config overrides as a mapping, nested
	// (`runner: {max_iters: 10}`) or dotted (`runner.max_iters: 10`);
	// each leaf becomes one --cfg-options KEY=VALUE.
	CfgOptions map[string]any `cfg:"cfg_options"`
	// Args are further command-line arguments, such as [--seed, 0].
	Args []any `cfg:"args"`
}

// pipelineRef matches a run-time reference $(...), pipelineRefBody the
// steps.NAME.OUTPUT it must hold, and stepName a valid step name.
var (
	pipelineRef     = regexp.MustCompile(`\$\(([^)]*)\)`)
	pipelineRefBody = regexp.MustCompile(`^\s*steps\.([A-Za-z][A-Za-z0-9_-]*)\.([A-Za-z][A-Za-z0-9_]*)\s*$`)
	stepName        = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
)

// stepOption is one --cfg-options pair before its references are resolved.
type stepOption struct {
	key   string
	value any
}

// plannedStep is a step checked against the tools and the steps before it,
// ready to be resolved into a command line once its inputs exist.
type plannedStep struct {
	Step
	index   int
	options []stepOption
	args    []string
	// deps are the earlier steps it refers to, in pipeline order.
	deps []string
}

// where names the step in messages: `step 2 (search)`.
func (s *plannedStep) where() string {
	return fmt.Sprintf("step %d (%s)", s.index+1, s.Name)
}

// plan reads the steps of a loaded pipeline config and checks every
// name, tool and reference before anything runs.
func plan(cfg *config.Config, tools map[string]Tool) ([]*plannedStep, error) {
	if !cfg.Has("steps") {
		return nil, fmt.Errorf("pipeline %s has no steps: list them under `steps:`, each with a name, a tool and a config", cfg.File)
	}
	var raw []Step
	if err := cfg.Decode("steps", &raw); err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", cfg.File, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("pipeline %s: steps is empty", cfg.File)
	}
	var shared []stepOption
	if cfg.Has("cfg_options") {
		var m map[string]any
		if err := cfg.Decode("cfg_options", &m); err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", cfg.File, err)
		}
		var err error
		if shared, err = flattenOptions(m, "cfg_options"); err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", cfg.File, err)
		}
	}
	outputs := map[string][]string{}
	var steps []*plannedStep
	for i, ps := range raw {
		s := &plannedStep{Step: ps, index: i}
		if err := s.check(tools, outputs, steps, shared); err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", cfg.File, err)
		}
		outputs[s.Name] = append(slices.Clone(tools[s.Tool].Outputs), "work_dir")
		steps = append(steps, s)
	}
	return steps, nil
}

// check validates one step against the tools and the steps before it and
// fills in its options, arguments and dependencies.
func (s *plannedStep) check(tools map[string]Tool, outputs map[string][]string, before []*plannedStep, shared []stepOption) error {
	if !stepName.MatchString(s.Name) {
		return fmt.Errorf("step %d: name %q must start with a letter and hold only letters, digits, _ and - (it names the step's work dir and its references)", s.index+1, s.Name)
	}
	for _, b := range before {
		if b.Name == s.Name {
			return fmt.Errorf("%s: the name %q is already %s's; step names must be unique", s.where(), s.Name, b.where())
		}
	}
	tool, ok := tools[s.Tool]
	if !ok {
		return fmt.Errorf("%s: unknown tool %q; the tools are %s", s.where(), s.Tool, strings.Join(toolNames(tools), ", "))
	}
	switch {
	case tool.NoConfig && s.Config != "":
		return fmt.Errorf("%s: tool %s takes no config; give its flags in args", s.where(), s.Tool)
	case tool.NoConfig && len(s.CfgOptions) > 0:
		return fmt.Errorf("%s: tool %s takes no config, so no cfg_options; give its flags in args", s.where(), s.Tool)
	case !tool.NoConfig && s.Config == "":
		return fmt.Errorf("%s: tool %s needs a config, such as config: '{{fileDirname}}/x.yaml'", s.where(), s.Tool)
	case tool.Checkpoint && s.Checkpoint == "":
		return fmt.Errorf("%s: tool %s needs a checkpoint, such as checkpoint: $(steps.NAME.checkpoint)", s.where(), s.Tool)
	case !tool.Checkpoint && s.Checkpoint != "":
		return fmt.Errorf("%s: tool %s takes no checkpoint; pass weights with cfg_options (load_from)", s.where(), s.Tool)
	}
	own, err := flattenOptions(s.CfgOptions, "cfg_options")
	if err != nil {
		return fmt.Errorf("%s: %w", s.where(), err)
	}
	s.options = own
	if !tool.NoConfig {
		s.options = append(slices.Clone(shared), own...)
	}
	for i, a := range s.Args {
		switch v := a.(type) {
		case string:
			s.args = append(s.args, v)
		case int, float64, bool:
			s.args = append(s.args, fmt.Sprint(v))
		default:
			return fmt.Errorf("%s: args.%d is %T; each argument must be a string or a number", s.where(), i, a)
		}
	}
	// Resolving against known names only checks every reference and
	// collects the steps this one needs.
	deps := map[string]bool{}
	_, err = s.resolve(func(step, key, where string) (string, error) {
		outs, ok := outputs[step]
		if !ok {
			var earlier []string
			for _, b := range before {
				earlier = append(earlier, b.Name)
			}
			if len(earlier) == 0 {
				return "", fmt.Errorf("%s refers to step %q, but no step comes before this one", where, step)
			}
			return "", fmt.Errorf("%s refers to step %q, which is not an earlier step (earlier steps: %s)", where, step, strings.Join(earlier, ", "))
		}
		if !slices.Contains(outs, key) {
			return "", fmt.Errorf("%s refers to output %q of step %q, which has no such output; its outputs are %s", where, key, step, strings.Join(outs, ", "))
		}
		deps[step] = true
		return "", nil
	})
	if err != nil {
		return err
	}
	for _, b := range before {
		if deps[b.Name] {
			s.deps = append(s.deps, b.Name)
		}
	}
	return nil
}

// resolvedStep is a step's tool arguments with every reference replaced.
type resolvedStep struct {
	config, checkpoint string
	options            []string
	args               []string
}

// resolve replaces the references in the step's fields through lookup,
// which receives the step, the output and where the reference was written.
func (s *plannedStep) resolve(lookup func(step, key, where string) (string, error)) (*resolvedStep, error) {
	r, err := s.resolveFields(lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.where(), err)
	}
	return r, nil
}

func (s *plannedStep) resolveFields(lookup func(step, key, where string) (string, error)) (*resolvedStep, error) {
	var r resolvedStep
	var err error
	if r.config, err = substituteRefs(s.Config, "config", lookup); err != nil {
		return nil, err
	}
	if r.checkpoint, err = substituteRefs(s.Checkpoint, "checkpoint", lookup); err != nil {
		return nil, err
	}
	for _, o := range s.options {
		where := "cfg_options " + o.key
		v, err := substituteValue(o.value, where, lookup)
		if err != nil {
			return nil, err
		}
		text, err := config.FormatValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w; set it in a config file instead", where, err)
		}
		r.options = append(r.options, o.key+"="+text)
	}
	for i, a := range s.args {
		v, err := substituteRefs(a, fmt.Sprintf("args.%d", i), lookup)
		if err != nil {
			return nil, err
		}
		r.args = append(r.args, v)
	}
	return &r, nil
}

// substituteValue replaces references in every string of an option value.
func substituteValue(v any, where string, lookup func(step, key, where string) (string, error)) (any, error) {
	switch t := v.(type) {
	case string:
		return substituteRefs(t, where, lookup)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := substituteValue(e, where, lookup)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// substituteRefs replaces each $(steps.NAME.OUTPUT) in s with lookup's
// answer.
func substituteRefs(s, where string, lookup func(step, key, where string) (string, error)) (string, error) {
	if rest := pipelineRef.ReplaceAllString(s, ""); strings.Contains(rest, "$(") {
		return "", fmt.Errorf("%s: %q opens a reference with $( that no ) closes; write $(steps.NAME.OUTPUT)", where, s)
	}
	var firstErr error
	out := pipelineRef.ReplaceAllStringFunc(s, func(m string) string {
		if firstErr != nil {
			return m
		}
		body := pipelineRef.FindStringSubmatch(m)[1]
		sm := pipelineRefBody.FindStringSubmatch(body)
		if sm == nil {
			firstErr = fmt.Errorf("%s: %s is not a step reference; write $(steps.NAME.OUTPUT), such as $(steps.supernet.checkpoint)", where, m)
			return m
		}
		v, err := lookup(sm[1], sm[2], where)
		if err != nil {
			firstErr = err
			return m
		}
		return v
	})
	return out, firstErr
}

// flattenOptions turns a nested cfg_options mapping into dotted KEY=VALUE
// pairs in key order, refusing a key set twice (once dotted, once nested).
func flattenOptions(m map[string]any, path string) ([]stepOption, error) {
	var out []stepOption
	var walk func(m map[string]any, prefix string) error
	walk = func(m map[string]any, prefix string) error {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if sub, ok := m[k].(map[string]any); ok {
				if len(sub) == 0 {
					return fmt.Errorf("%s.%s is an empty mapping, which an override cannot set; set it in a config file", path, key)
				}
				if err := walk(sub, key); err != nil {
					return err
				}
				continue
			}
			out = append(out, stepOption{key, m[k]})
		}
		return nil
	}
	if err := walk(m, ""); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].key < out[j].key })
	for i := 1; i < len(out); i++ {
		if out[i].key == out[i-1].key {
			return nil, fmt.Errorf("%s sets %s twice (once as a dotted key, once nested); write it once", path, out[i].key)
		}
	}
	return out, nil
}

// toolNames lists the tools in name order.
func toolNames(tools map[string]Tool) []string {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Command is one step of a pipeline as its tool will be called.
type Command struct {
	Step, Tool string
	// Config, Checkpoint and CfgOptions (KEY=VALUE pairs) are what the tool
	// loads.
	Config, Checkpoint string
	CfgOptions         []string
	// Args is the tool's whole argument list.
	Args []string
}

// Plan checks a loaded pipeline config against tools and returns
// its steps' commands, each step working in <workDir>/<name>, with every
// reference to an earlier step's output replaced by ref's answer (a stand-in
// where the step has not run).
func Plan(cfg *config.Config, tools map[string]Tool, workDir string, ref func(step, output string) string) ([]Command, error) {
	steps, err := plan(cfg, tools)
	if err != nil {
		return nil, err
	}
	out := make([]Command, len(steps))
	for i, s := range steps {
		r, err := s.resolve(func(step, key, where string) (string, error) { return ref(step, key), nil })
		if err != nil {
			return nil, err
		}
		out[i] = Command{Step: s.Name, Tool: s.Tool, Config: r.config, Checkpoint: r.checkpoint, CfgOptions: r.options,
			Args: buildArgs(tools[s.Tool], r, filepath.Join(workDir, s.Name))}
	}
	return out, nil
}
