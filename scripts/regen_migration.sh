#!/usr/bin/env bash
# Rewrite the initial migration from the models (only while no release has shipped: after
# the first release, add new revisions with `yifang db revision` instead).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f yifang/core/migrations/versions/0001_initial_schema.py
.venv/bin/yifang db revision "initial schema" --rev-id 0001 >/dev/null
.venv/bin/python - <<'PY'
from pathlib import Path
p = Path("yifang/core/migrations/versions/0001_initial_schema.py")
s = p.read_text()
s = s.replace("from alembic import op\n", "from alembic import op\n\nfrom yifang.core.audit import install_append_only_triggers\n", 1)
s = s.replace("    # ### end Alembic commands ###\n", "    # ### end Alembic commands ###\n    install_append_only_triggers(op.get_bind())\n", 1)
# A fixed date, so that regenerating an unchanged schema changes nothing.
import re
s = re.sub(r"Create Date: .*", "Create Date: 2026-11-23", s, count=1)
# SQLite cannot reflect expression indexes, so autogenerate leaves them out: add them here.
expr = (
    "    op.create_index('ix_card_county_diag', 'card', "
    "[sa.text('substr(address_code, 1, 6)'), 'diagnosis_time'], unique=False)\n"
)
s = s.replace("    install_append_only_triggers(op.get_bind())\n",
              expr + "    install_append_only_triggers(op.get_bind())\n", 1)
p.write_text(s)
PY
