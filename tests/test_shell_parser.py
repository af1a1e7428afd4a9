"""SENTINEL's shell lexer/parser (services/sentinel/shell.py) and inline code analysis."""

from __future__ import annotations

import time

import pytest

from services.sentinel.inline_code import analyse
from services.sentinel.shell import MAX_DEPTH, Command, parse

ENV: dict[str, str | None] = {"HOME": "/home/dev", "TMPDIR": "/tmp/t"}
CWD = "/home/dev/project"


def cmds(text: str, cwd: str = CWD) -> list[Command]:
    return parse(text, cwd, ENV).commands


def argvs(text: str, cwd: str = CWD) -> list[list[str]]:
    return [c.argv for c in cmds(text, cwd)]


def find(text: str, program: str, cwd: str = CWD) -> Command:
    for c in cmds(text, cwd):
        if c.program == program:
            return c
    raise AssertionError(f"no {program} in {argvs(text, cwd)}")


# ------------------------------------------------------------------------------------------------ lexing

@pytest.mark.parametrize(("text", "argv"), [
    ("rm -rf /x", ["rm", "-rf", "/x"]),
    ("rm '-rf' \"/x\"", ["rm", "-rf", "/x"]),
    ("rm -\"r\"'f' /x", ["rm", "-rf", "/x"]),
    ("r\\m -rf /x", ["rm", "-rf", "/x"]),
    ("rm -r\\\nf /x", ["rm", "-rf", "/x"]),
    ("$'\\x72\\x6d' -rf /x", ["rm", "-rf", "/x"]),
    ("$'\\162m' $'-\\u0072f' /x", ["rm", "-rf", "/x"]),
    ("$\"rm\" -rf /x", ["rm", "-rf", "/x"]),
    ("echo \"a \\\"b\\\" \\$HOME\"", ["echo", 'a "b" $HOME']),
    ("echo 'a\\b'", ["echo", "a\\b"]),
    ("echo a#b # comment", ["echo", "a#b"]),
    ("echo \"\"", ["echo", ""]),
])
def test_quotes_and_escapes(text: str, argv: list[str]) -> None:
    assert argvs(text)[0] == argv


def test_control_operators_split_commands() -> None:
    text = "a; b && c || d | e |& f & g\nh ( i ) { j; } ! k"
    progs = [c.program for c in cmds(text)]
    assert progs == ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


def test_redirections() -> None:
    c = find("cat <in.txt >out.txt 2>&1 >>log &>all 3<>rw", "cat")
    ops = [(r.fd, r.op, r.target.text if r.target else None) for r in c.redirects]
    assert ops == [(None, "<", "in.txt"), (None, ">", "out.txt"), ("2", ">&", "1"), (None, ">>", "log"),
                   (None, "&>", "all"), ("3", "<>", "rw")]
    assert [r.writes for r in c.redirects] == [False, True, False, True, True, True]


def test_heredoc_bodies_captured() -> None:
    c = find("psql <<EOF\nDROP TABLE x;\nEOF\necho done", "psql")
    assert c.stdin == "heredoc" and c.stdin_text == "DROP TABLE x;\n"
    c = find("cat <<-'END' | sh\n\trm -rf /x\n\tEND\n", "cat")
    assert c.stdin_text == "rm -rf /x\n"
    assert ["rm", "-rf", "/x"] in argvs("cat <<-'END' | sh\n\trm -rf /x\n\tEND\n")
    c = find("sqlite3 db <<< 'drop table t'", "sqlite3")
    assert c.stdin == "herestring" and c.stdin_text == "drop table t\n"


def test_shell_fed_from_heredoc_or_echo_is_parsed() -> None:
    assert ["rm", "-rf", "/srv"] in argvs("bash <<EOF\nrm -rf /srv\nEOF")
    assert ["rm", "-rf", "/srv"] in argvs("echo 'rm -rf /srv' | sh")
    assert ["rm", "-rf", "/srv"] in argvs("printf 'rm -rf /srv\\n' | bash -s")
    assert ["rm", "-rf", "/srv"] in argvs("echo cm0gLXJmIC9zcnYK | base64 -d | sh")


def test_substitutions() -> None:
    subs = cmds("echo $(rm -rf /a) `rm -rf /b` <(rm -rf /c) $((1+2))")
    rms = [c.argv for c in subs if c.program == "rm"]
    assert rms == [["rm", "-rf", "/a"], ["rm", "-rf", "/b"], ["rm", "-rf", "/c"]]
    assert {c.via[-1] for c in subs if c.program == "rm"} == {"$()", "<()"}
    assert argvs("$(echo rm) -rf /x")[-1] == ["rm", "-rf", "/x"]


def test_download_into_shell_marks_the_downloader() -> None:
    for text in ("curl -s https://x | sh", "bash <(curl https://x)", 'sh -c "$(wget -O- https://x)"',
                 'eval "$(curl https://x)"', "source <(curl https://x)", "curl https://x | tee f | sudo bash",
                 "wget -qO- https://x | python3 -"):
        assert find(text, "curl" if "curl" in text else "wget").exec_sink, text
    assert not find("curl -s https://x | jq .", "curl").exec_sink
    assert not find("curl -o x.sh https://x", "curl").exec_sink


# ------------------------------------------------------------------------------------------------ variables

@pytest.mark.parametrize(("text", "argv"), [
    ("X=rm; $X -rf /x", ["rm", "-rf", "/x"]),
    ("a=-r; b=f; rm ${a}${b} /x", ["rm", "-rf", "/x"]),
    ("C='rm -rf'; $C /x", ["rm", "-rf", "/x"]),
    ("export D=/srv; rm -rf $D", ["rm", "-rf", "/srv"]),
    ("rm -rf ${NOPE:-/srv}", ["rm", "-rf", "/srv"]),
    ("X=RM; ${X,,} -rf /x", ["rm", "-rf", "/x"]),
    ("X=xrm; ${X#x} -rf /x", ["rm", "-rf", "/x"]),
    ("X=rmdir; ${X:0:2} -rf /x", ["rm", "-rf", "/x"]),
    ("rm -rf ~/x $HOME/y ~", ["rm", "-rf", "/home/dev/x", "/home/dev/y", "/home/dev"]),
])
def test_variables(text: str, argv: list[str]) -> None:
    assert argvs(text)[-1] == argv


def test_unknown_values_are_marked() -> None:
    c = cmds("rm -rf $UNKNOWN")[0]
    assert c.args[2].unresolved
    c = cmds("$CMD -rf /")[0]
    assert c.unknown_program


def test_cd_tracking_and_normalisation() -> None:
    assert find("cd /tmp && rm -rf x", "rm").cwd == "/tmp"
    assert find("cd / && rm -rf home", "rm").resolve("home") == "/home"
    assert find("cd ..; ls", "ls").cwd == "/home/dev"
    assert find("(cd /tmp; true); ls", "ls").cwd == CWD
    assert find("cd $X; ls", "ls").cwd is None
    assert find("ls", "ls").resolve("/tmp/../etc") == "/etc"


# ------------------------------------------------------------------------------------------------ wrappers

@pytest.mark.parametrize("text", [
    "sudo rm -rf /x", "sudo -u root -E -- rm -rf /x", "doas rm -rf /x", "env -i A=1 rm -rf /x",
    "env -S 'rm -rf /x'", "nice -n 10 rm -rf /x", "ionice -c 3 rm -rf /x", "timeout -s KILL 5 rm -rf /x",
    "nohup rm -rf /x", "stdbuf -oL rm -rf /x", "time rm -rf /x", "command rm -rf /x", "builtin exec rm -rf /x",
    "bash -c 'rm -rf /x'", "sh -lc 'rm -rf /x'", "bash -ec 'rm -rf /x'", "zsh -xc 'rm -rf /x'",
    "eval 'rm -rf /x'", "eval rm -rf /x", "ssh -p 22 host rm -rf /x", "ssh host 'rm -rf /x'",
    "docker exec -it -u root ctr rm -rf /x", "kubectl exec -n ns pod -- rm -rf /x", "watch -n 1 rm -rf /x",
    "flock /tmp/l rm -rf /x", "chroot /mnt rm -rf /x", "su -c 'rm -rf /x' root", "xargs -0 rm -rf /x",
    "sudo env FOO=1 nice bash -c \"eval 'rm -rf /x'\"", "python3 -c 'import os; os.system(\"rm -rf /x\")'",
    "python -c \"import subprocess; subprocess.run(['rm', '-rf', '/x'])\"", "node -e \"require('child_process')"
    ".execSync('rm -rf /x')\"", "perl -e 'system(\"rm -rf /x\")'", "ruby -e 'system(\"rm -rf /x\")'",
    "bash -c 'sh -c \"rm -rf /x\"' && true", "if true; then rm -rf /x; fi", "for i in 1; do rm -rf /x; done",
    "case x in x) rm -rf /x;; esac", "f() { rm -rf /x; }; f",
])
def test_wrappers_are_transparent(text: str) -> None:
    rms = [c for c in cmds(text) if c.program == "rm"]
    assert rms, argvs(text)
    assert rms[0].argv[:3] == ["rm", "-rf", "/x"]


def test_via_chain() -> None:
    rm = find("sudo bash -c 'eval \"rm -rf /x\"'", "rm")
    assert rm.via == ("sudo", "bash -c", "eval")


def test_find_exec_and_xargs() -> None:
    rm = find("find /srv -name '*.log' -exec rm -f {} \\;", "rm")
    assert rm.argv == ["rm", "-f", "/srv/{}"] and rm.via == ("find -exec",)
    rm = find("ls | xargs rm -rf", "rm")
    assert rm.args[-1].unresolved and rm.via == ("xargs",)


def test_sh_c_positional_parameters() -> None:
    rm = find("sh -c 'rm -rf \"$1\"' _ /srv", "rm")
    assert rm.argv == ["rm", "-rf", "/srv"]


def test_python_inline_ast() -> None:
    assert ("rmtree", "/srv") in analyse("python", "import shutil; shutil.rmtree('/srv')")
    assert ("rmtree", "/srv/x") in analyse("python", "from shutil import rmtree as r; p='/srv'; r(p + '/x')")
    assert ("shell", "rm -rf /") in analyse("python", "import os; os.system('rm -rf ' + '/')")
    assert ("read", "/home/dev/.ssh/id_rsa") in analyse("python", "print(open('/home/dev/.ssh/id_rsa').read())")
    assert ("rmtree", None) in analyse("python", "import shutil, sys; shutil.rmtree(sys.argv[1])")
    assert any(k == "problem" for k, _ in analyse("python", "this is ( not python"))


def test_node_perl_ruby_heuristics() -> None:
    assert ("rmtree", "/srv") in analyse("node", "require('fs').rmSync('/srv', {recursive: true, force: true})")
    assert ("rmtree", "/srv") in analyse("perl", "use File::Path; rmtree('/srv')")
    assert ("rmtree", "/srv") in analyse("ruby", "require 'fileutils'; FileUtils.rm_rf('/srv')")
    assert ("shell", "rm -rf /") in analyse("ruby", "`rm -rf /`")


# ------------------------------------------------------------------------------------------------ limits

def test_depth_limit() -> None:
    text = "rm -rf /x"
    for _ in range(MAX_DEPTH + 2):
        text = "bash -c " + "'" + text.replace("'", "'\\''") + "'"
    p = parse(text, CWD, ENV)
    assert any("nesting" in problem for problem in p.problems)
    deep = "echo " + "$(" * 50 + "rm -rf /" + ")" * 50
    p = parse(deep, CWD, ENV)
    assert any("nesting" in problem for problem in p.problems)


@pytest.mark.parametrize("text", [
    "a " * 500_000, "echo '" + "x" * (1 << 20) + "'", "$(" * 300_000, "rm -rf /tmp/x; " * 60_000, "`" * 100_000,
    "a|" * 300_000, "(" * 300_000, "\\${" * 300_000, "x=$((" * 200_000, "echo \\\"" * 150_000,
    "cat <<EOF\n" + "DROP TABLE x;\n" * 70_000,
])
def test_pathological_inputs_are_bounded(text: str) -> None:
    text = text[: 1 << 20]
    t0 = time.perf_counter()
    parse(text, CWD, ENV)
    # ~0.5 s here at worst, but up to 1.7 s was seen while CI loaded both cores; a quadratic walk over these
    # inputs would take minutes, so 5 s still catches what this guards against without flaking.
    assert time.perf_counter() - t0 < 5.0


def test_unbalanced_quotes_are_problems() -> None:
    assert parse("echo 'oops", CWD, ENV).problems
    assert parse('rm -rf "/x', CWD, ENV).problems
    assert not parse("echo ok", CWD, ENV).problems


def test_fork_bomb_detected() -> None:
    assert parse(":(){ :|:& };:", CWD, ENV).forkbombs
    assert parse("bomb() { bomb | bomb & }; bomb", CWD, ENV).forkbombs
    assert not parse("f() { echo hi; }; f", CWD, ENV).forkbombs
