#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "cli.h"

/* Shell completion is generated from the command table, so a new command or
 * flag is completed without anyone editing three scripts. Each script has
 * the same shape: small functions that map a command path ("banger vm
 * create") to its subcommands, options and argument kind, and a driver
 * that walks the words typed so far to find that path. */

typedef struct {
  char *path;
  const BangerCommand *command;
} Node;

static void
node_free (Node *node)
{
  g_free (node->path);
  g_free (node);
}

static void
collect (GPtrArray *nodes, const BangerCommand *command, const char *path)
{
  Node *node = g_new0 (Node, 1);

  node->path = g_strdup (path);
  node->command = command;
  g_ptr_array_add (nodes, node);
  if (command->subcommands == NULL)
    return;
  for (const BangerCommand *const *p = command->subcommands; *p != NULL; p++) {
    g_autofree char *child = NULL;

    if ((*p)->flags & BANGER_COMMAND_FLAG_HIDDEN)
      continue;
    child = g_strdup_printf ("%s %s", path, (*p)->name);
    collect (nodes, *p, child);
  }
}

static gboolean
entry_takes_value (const GOptionEntry *e)
{
  if (e->arg == G_OPTION_ARG_NONE)
    return FALSE;
  if (e->arg == G_OPTION_ARG_CALLBACK && (e->flags & G_OPTION_FLAG_NO_ARG))
    return FALSE;
  return TRUE;
}

/* Space-separated flags of @command (its own, then the global ones). */
static char *
option_words (const BangerCommand *command, gboolean only_with_value)
{
  g_autoptr (GString) s = g_string_new (NULL);
  const GOptionEntry *tables[] = { command->options, banger_global_options };

  /* A group takes only the global flags. */
  for (guint t = command->subcommands != NULL ? 1 : 0; t < G_N_ELEMENTS (tables); t++) {
    for (const GOptionEntry *e = tables[t]; e != NULL && e->long_name != NULL; e++) {
      if (e->flags & G_OPTION_FLAG_HIDDEN)
        continue;
      if (only_with_value && !entry_takes_value (e))
        continue;
      g_string_append_printf (s, "%s--%s", s->len ? " " : "", e->long_name);
      if (e->short_name)
        g_string_append_printf (s, " -%c", e->short_name);
    }
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static char *
subcommand_words (const BangerCommand *command)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (const BangerCommand *const *p = command->subcommands; p != NULL && *p != NULL; p++)
    if (!((*p)->flags & BANGER_COMMAND_FLAG_HIDDEN))
      g_string_append_printf (s, "%s%s", s->len ? " " : "", (*p)->name);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* Fixed words a command's positional argument can be. */
static const char *
argument_words (const BangerCommand *command)
{
  if (command == &banger_completion_command)
    return "bash zsh fish";
  return NULL;
}

/* A case statement mapping each path to @words(path); bash and zsh share
 * this syntax. print_cmd is "echo" or "print -r --". */
typedef char *(*WordsFunc) (const Node *node);

static void
emit_case_function (GString *out, GPtrArray *nodes, const char *fn, WordsFunc words,
                    const char *print_cmd)
{
  g_string_append_printf (out, "%s() {\n  case \"$1\" in\n", fn);
  for (guint i = 0; i < nodes->len; i++) {
    const Node *node = g_ptr_array_index (nodes, i);
    g_autofree char *w = words (node);
    g_autofree char *qpath = NULL;
    g_autofree char *qwords = NULL;

    if (w == NULL || w[0] == '\0')
      continue;
    qpath = g_shell_quote (node->path);
    qwords = g_shell_quote (w);
    g_string_append_printf (out, "  %s) %s %s ;;\n", qpath, print_cmd, qwords);
  }
  g_string_append (out, "  esac\n}\n\n");
}

static char *
words_subcommands (const Node *node)
{
  return subcommand_words (node->command);
}

static char *
words_options (const Node *node)
{
  return option_words (node->command, FALSE);
}

static char *
words_value_options (const Node *node)
{
  return option_words (node->command, TRUE);
}

static char *
words_arguments (const Node *node)
{
  return g_strdup (argument_words (node->command));
}

/* The group whose `list --names` completes this command's arguments. */
static const char *
argument_kind (const BangerCommand *command)
{
  if (command->flags & BANGER_COMMAND_FLAG_VM_ARGS)
    return "vm";
  if (command->flags & BANGER_COMMAND_FLAG_IMAGE_ARGS)
    return "image";
  if (command->flags & BANGER_COMMAND_FLAG_KERNEL_ARGS)
    return "kernel";
  return NULL;
}

static char *
words_argkind (const Node *node)
{
  return g_strdup (argument_kind (node->command));
}

static void
emit_common_functions (GString *out, GPtrArray *nodes, const char *print_cmd)
{
  emit_case_function (out, nodes, "_banger_subcommands", words_subcommands, print_cmd);
  emit_case_function (out, nodes, "_banger_options", words_options, print_cmd);
  emit_case_function (out, nodes, "_banger_value_options", words_value_options, print_cmd);
  emit_case_function (out, nodes, "_banger_argwords", words_arguments, print_cmd);
  emit_case_function (out, nodes, "_banger_argkind", words_argkind, print_cmd);
}

/* The word walk bash and zsh share, after each sets $w: an option's value
 * is not a subcommand, and subcommands extend $cmdpath. It ends by opening
 * `if ((skip))` (the cursor is on an option's value), whose body each
 * shell fills its own way. */
#define WALK_WORDS                                                                                 \
  "    if ((skip)); then skip=0; continue; fi\n"                                                   \
  "    case \"$w\" in\n"                                                                           \
  "    --*=*) continue ;;\n"                                                                       \
  "    -*)\n"                                                                                      \
  "      [[ \" $(_banger_value_options \"$cmdpath\") \" == *\" $w \"* ]] && skip=1\n"              \
  "      continue ;;\n"                                                                            \
  "    esac\n"                                                                                     \
  "    if [[ \" $(_banger_subcommands \"$cmdpath\") \" == *\" $w \"* ]]; then\n"                   \
  "      cmdpath=\"$cmdpath $w\"\n"                                                                \
  "    else\n"                                                                                     \
  "      break\n"                                                                                  \
  "    fi\n"                                                                                       \
  "  done\n"                                                                                       \
  "  if ((skip)); then\n"

static void
emit_bash (GString *out, GPtrArray *nodes)
{
  g_string_append (out, "# bash completion for banger\n"
                        "# Generated by `banger completion bash` from banger's command table.\n"
                        "# Install: banger completion bash > "
                        "~/.local/share/bash-completion/completions/banger\n\n");
  emit_common_functions (out, nodes, "echo");
  g_string_append (
      out, "_banger() {\n"
           "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmdpath=banger w i skip=0\n"
           "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "    w=\"${COMP_WORDS[i]}\"\n" WALK_WORDS "    compopt -o default 2>/dev/null\n"
           "    COMPREPLY=()\n"
           "    return\n"
           "  fi\n"
           "  if [[ \"$cur\" == -* ]]; then\n"
           "    COMPREPLY=($(compgen -W \"$(_banger_options \"$cmdpath\")\" -- \"$cur\"))\n"
           "    return\n"
           "  fi\n"
           "  local sub\n"
           "  sub=\"$(_banger_subcommands \"$cmdpath\")\"\n"
           "  if [[ -n \"$sub\" ]]; then\n"
           "    COMPREPLY=($(compgen -W \"$sub\" -- \"$cur\"))\n"
           "  elif [[ -n \"$(_banger_argkind \"$cmdpath\")\" ]]; then\n"
           "    COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" $(_banger_argkind \"$cmdpath\") "
           "list --names 2>/dev/null)\" -- \"$cur\"))\n"
           "  else\n"
           "    COMPREPLY=($(compgen -W \"$(_banger_argwords \"$cmdpath\")\" -- \"$cur\"))\n"
           "  fi\n"
           "}\n"
           "complete -F _banger banger\n");
}

/* "name:summary" lines for zsh's _describe; ':' in a name must be escaped. */
static char *
words_described (const Node *node)
{
  g_autoptr (GString) s = g_string_new (NULL);

  if (node->command->subcommands == NULL)
    return NULL;
  for (const BangerCommand *const *p = node->command->subcommands; *p != NULL; p++) {
    if ((*p)->flags & BANGER_COMMAND_FLAG_HIDDEN)
      continue;
    g_string_append_printf (s, "%s%s:%s", s->len ? "\n" : "", (*p)->name, _ ((*p)->summary));
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
emit_zsh (GString *out, GPtrArray *nodes)
{
  g_string_append (out, "#compdef banger\n"
                        "# zsh completion for banger\n"
                        "# Generated by `banger completion zsh` from banger's command table.\n"
                        "# Install: banger completion zsh > \"${fpath[1]}/_banger\"\n\n");
  /* zsh's echo interprets backslashes; print -r does not. */
  emit_common_functions (out, nodes, "print -r --");
  emit_case_function (out, nodes, "_banger_described", words_described, "print -r --");
  g_string_append (
      out, "_banger() {\n"
           "  local cmdpath=banger w i skip=0 cur=\"${words[CURRENT]}\"\n"
           "  local -a described\n"
           "  for ((i = 2; i < CURRENT; i++)); do\n"
           "    w=\"${words[i]}\"\n" WALK_WORDS "    _files\n"
           "    return\n"
           "  fi\n"
           "  if [[ \"$cur\" == -* ]]; then\n"
           "    compadd -- ${=\"$(_banger_options \"$cmdpath\")\"}\n"
           "    return\n"
           "  fi\n"
           "  described=(\"${(@f)$(_banger_described \"$cmdpath\")}\")\n"
           "  if [[ -n \"${described[1]}\" ]]; then\n"
           "    _describe -t commands 'banger command' described\n"
           "  elif [[ -n \"$(_banger_argkind \"$cmdpath\")\" ]]; then\n"
           "    compadd -- ${(f)\"$(${words[1]} $(_banger_argkind \"$cmdpath\") list --names "
           "2>/dev/null)\"}\n"
           "  else\n"
           "    compadd -- ${=\"$(_banger_argwords \"$cmdpath\")\"}\n"
           "  fi\n"
           "}\n\n"
           "if [[ \"${zsh_eval_context[-1]}\" == loadautofunc ]]; then\n"
           "  _banger \"$@\"\n"
           "else\n"
           "  compdef _banger banger\n"
           "fi\n");
}

/* fish: a list function per kind (one word per line, as fish splits
 * command substitutions on newlines), then `complete` lines per path. */
static void
emit_fish_list_function (GString *out, GPtrArray *nodes, const char *fn, WordsFunc words)
{
  g_string_append_printf (out, "function %s\n    switch \"$argv[1]\"\n", fn);
  for (guint i = 0; i < nodes->len; i++) {
    const Node *node = g_ptr_array_index (nodes, i);
    g_autofree char *w = words (node);
    g_autofree char *qpath = NULL;
    g_auto (GStrv) list = NULL;

    if (w == NULL || w[0] == '\0')
      continue;
    qpath = g_shell_quote (node->path);
    g_string_append_printf (out, "        case %s\n            printf '%%s\\n'", qpath);
    list = g_strsplit (w, " ", -1);
    for (guint j = 0; list[j] != NULL; j++) {
      g_autofree char *q = g_shell_quote (list[j]);
      g_string_append_printf (out, " %s", q);
    }
    g_string_append (out, "\n");
  }
  g_string_append (out, "    end\nend\n\n");
}

static void
emit_fish (GString *out, GPtrArray *nodes)
{
  g_string_append (out, "# fish completion for banger\n"
                        "# Generated by `banger completion fish` from banger's command table.\n"
                        "# Install: banger completion fish > "
                        "~/.config/fish/completions/banger.fish\n\n");
  emit_fish_list_function (out, nodes, "__banger_subcommands", words_subcommands);
  emit_fish_list_function (out, nodes, "__banger_value_options", words_value_options);
  g_string_append (out, "function __banger_path\n"
                        "    set -l cmdpath banger\n"
                        "    set -l skip 0\n"
                        "    for w in (commandline -opc)[2..-1]\n"
                        "        if test $skip = 1\n"
                        "            set skip 0\n"
                        "            continue\n"
                        "        end\n"
                        "        switch $w\n"
                        "            case '--*=*'\n"
                        "                continue\n"
                        "            case '-*'\n"
                        "                if contains -- $w (__banger_value_options \"$cmdpath\")\n"
                        "                    set skip 1\n"
                        "                end\n"
                        "                continue\n"
                        "        end\n"
                        "        if contains -- $w (__banger_subcommands \"$cmdpath\")\n"
                        "            set cmdpath \"$cmdpath $w\"\n"
                        "        else\n"
                        "            break\n"
                        "        end\n"
                        "    end\n"
                        "    echo $cmdpath\n"
                        "end\n\n"
                        "complete -c banger -f\n");

  for (guint i = 0; i < nodes->len; i++) {
    const Node *node = g_ptr_array_index (nodes, i);
    const BangerCommand *c = node->command;
    g_autofree char *cond = NULL;
    g_autofree char *qcond = NULL;

    cond = g_strdup_printf ("test (__banger_path) = \"%s\"", node->path);
    qcond = g_shell_quote (cond);

    for (const BangerCommand *const *p = c->subcommands; p != NULL && *p != NULL; p++) {
      g_autofree char *qdesc = NULL;

      if ((*p)->flags & BANGER_COMMAND_FLAG_HIDDEN)
        continue;
      qdesc = g_shell_quote (_ ((*p)->summary));
      g_string_append_printf (out, "complete -c banger -n %s -a %s -d %s\n", qcond, (*p)->name,
                              qdesc);
    }
    for (const GOptionEntry *e = c->options; e != NULL && e->long_name != NULL; e++) {
      g_autofree char *qdesc = NULL;

      if (e->flags & G_OPTION_FLAG_HIDDEN)
        continue;
      qdesc = g_shell_quote (_ (e->description));
      g_string_append_printf (out, "complete -c banger -n %s -l %s", qcond, e->long_name);
      if (e->short_name)
        g_string_append_printf (out, " -s %c", e->short_name);
      g_string_append_printf (out, "%s -d %s\n", entry_takes_value (e) ? " -r" : "", qdesc);
    }
    if (argument_kind (c) != NULL)
      g_string_append_printf (
          out, "complete -c banger -n %s -a '(banger %s list --names 2>/dev/null)'\n", qcond,
          argument_kind (c));
    if (argument_words (c) != NULL)
      g_string_append_printf (out, "complete -c banger -n %s -a '%s'\n", qcond, argument_words (c));
  }
  for (const GOptionEntry *e = banger_global_options; e->long_name != NULL; e++) {
    g_autofree char *qdesc = g_shell_quote (_ (e->description));

    g_string_append_printf (out, "complete -c banger -l %s -s %c -d %s\n", e->long_name,
                            e->short_name, qdesc);
  }
}

static const GOptionEntry completion_options[] = { { NULL } };

static gboolean
completion_handler (BangerCli *cli, char **args, GError **error)
{
  g_autoptr (GPtrArray) nodes = g_ptr_array_new_with_free_func ((GDestroyNotify)node_free);
  g_autoptr (GString) out = g_string_new (NULL);

  if (!banger_cli_check_args (cli, args, 1, 1, error))
    return FALSE;
  collect (nodes, &banger_root_command, "banger");
  if (g_str_equal (args[0], "bash"))
    emit_bash (out, nodes);
  else if (g_str_equal (args[0], "zsh"))
    emit_zsh (out, nodes);
  else if (g_str_equal (args[0], "fish"))
    emit_fish (out, nodes);
  else
    return banger_cli_usage_error (cli, error, _ ("unknown shell “%s” (use bash, zsh or fish)"),
                                   args[0]);
  fputs (out->str, stdout);
  return TRUE;
}

const BangerCommand banger_completion_command = {
  "completion",
  N_ ("Print a shell completion script"),
  N_ ("bash|zsh|fish"),
  completion_options,
  completion_handler,
  NULL,
  0,
};
