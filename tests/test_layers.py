"""The layer rule of docs/internals.rst: a room of the package imports only
rooms of lower layers, never one of its own layer or above; none needs
Slurm."""

import ast
from pathlib import Path

import datalad_slurm

PACKAGE = Path(datalad_slurm.__file__).parent

# lowest first; rooms in one layer do not import each other unless listed
# in PEERS
LAYERS = [
    {'util', 'slurm', 'config'},
    {'repo'},
    {'records'},
    {'pool'},
    {'backends'},
    {'modes'},
    {'submit'},
    {'finish'},
    {'report', 'doctor'},
    {'commands'},
]
PEERS = set()


def layer_of(room: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room in rooms)


def room_of(module: str) -> str | None:
    """The room (first component below the package) of a dotted module
    name inside the package, None for the package itself."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported(path: Path):
    """The package's modules `path` imports, as (line, dotted name)."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module
                                          else []))
            else:
                target = node.module or ''
            targets = [target]
            if not node.module or node.level:
                # from . import x: x may be a module of its own
                targets = [f'{target}.{a.name}' for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t == 'datalad_slurm' or t.startswith('datalad_slurm.'):
                yield node.lineno, t


def test_every_room_has_a_layer():
    rooms = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == '.py' and p.name != '__init__.py') or
             (p / '__init__.py').exists()}
    assert rooms == set().union(*LAYERS)


def test_no_room_imports_a_higher_one():
    broken = []
    for path in sorted(PACKAGE.rglob('*.py')):
        own = room_of(module_name(path))
        if own is None:
            continue  # the package's __init__: the command suite
        for line, target in imported(path):
            room = room_of(target)
            if room is None or room == own:
                continue
            if layer_of(room) > layer_of(own) or (
                    layer_of(room) == layer_of(own) and
                    (own, room) not in PEERS):
                broken.append(f'{path.relative_to(PACKAGE)}:{line} '
                              f'({own}) imports {target} ({room})')
    assert not broken, '\n'.join(broken)


def test_slurm_imports_nothing_of_the_package():
    for path in (PACKAGE / 'slurm').rglob('*.py'):
        assert all(room_of(t) == 'slurm' for _, t in imported(path)), path


def test_the_internals_page_shows_these_layers():
    page = (PACKAGE.parent / 'docs' / 'internals.rst').read_text()
    block = page.split('.. begin-layers')[1].split('.. end-layers')[0]
    shown = [set(line.split()) for line in block.splitlines()
             if line.strip() and line.strip() != '::']
    assert shown == LAYERS[::-1]
