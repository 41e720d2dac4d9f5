"""The mutation suite of issue 13: realistic edits of Meeshy-shaped Dockerfiles, ignore files and
schema layout, each either breaking the schema's use or an equivalent form, with the gate's
verdict and its one-line reason (the problem, or the deciding evidence on a pass).

The Dockerfiles are the example monorepo's gateway and translator (Meeshy's shapes) and Meeshy's
web image (deps -> builder -> runner, copy policy); see tests/unit/gate/mutations.py. Where the
gate's claim depends on what BuildKit does (ignore files, symlinks), the same edits are built
for real in tests/integration/test_gate_buildkit.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tasks.lib.gate import GateInput, check
from tests.unit.gate.mutations import (
    DOCKERFILES,
    EXAMPLE,
    GATEWAY,
    GENERATE,
    POLICIES,
    SCHEMA,
    TRANSLATOR,
    WEB,
    Mutation,
    Replace,
    Symlink,
    Write,
    apply,
    meeshy_copy,
)

SCHEMA_TEXT = (EXAMPLE / SCHEMA).read_text(encoding="utf-8")
TR_GEN = "RUN prisma generate --schema=./shared/prisma/schema.prisma"
TR_COPY = "COPY packages/shared/prisma ./shared/prisma/"
GW_DEPS_COPY = "COPY packages/shared/ ./packages/shared/"
GW_FINAL_SHARED = "COPY --from=builder /app/packages/shared ./packages/shared"
GW_INSTALL = "    ${PACKAGE_MANAGER} install"
WEB_FROM_DEPS = "COPY --from=deps /app/packages ./packages\n"
WEB_FINAL_SHARED = "COPY --from=builder /app/packages/shared ./packages/shared"
WEB_APP_BUILD = "RUN cd apps/web && ${PACKAGE_MANAGER} run build\n"
GATEWAY_IGNORE_WARNING = (
    "services/gateway/.dockerignore is not read by a build with context '.' (Docker reads "
    ".dockerignore); move its patterns there or into services/gateway/Dockerfile.dockerignore"
)

MUTATIONS = [
    Mutation(
        "rm-rf-schema-folder-before-generate",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN rm -rf packages/shared/prisma\n" + GENERATE),),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 removes it (`rm "
            "-rf packages/shared/prisma`); run prisma generate before that, or copy "
            "packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "rm-schema-as-last-link-of-install-chain",
        "gateway",
        (
            Replace(
                GATEWAY, GW_INSTALL, GW_INSTALL + " && rm -f packages/shared/prisma/schema.prisma"
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 14 removes it (`rm "
            "-f packages/shared/prisma/schema.prisma`); run prisma generate before that, or "
            "copy packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "rm-glob-of-translator-schema",
        "translator",
        (Replace(TRANSLATOR, TR_GEN, "RUN rm -f ./shared/prisma/schema.prisma*\n" + TR_GEN),),
        "breaking",
        (
            "services/translator/Dockerfile:13: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma, but the RUN at line 12 removes it (`rm -f "
            "'./shared/prisma/schema.prisma*'`); run prisma generate before that, or copy "
            "packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "rm-in-the-generate-run-itself",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                (
                    "RUN rm -rf shared/prisma && prisma generate "
                    "--schema=./shared/prisma/schema.prisma"
                ),
            ),
        ),
        "breaking",
        (
            "services/translator/Dockerfile:12: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma, but the RUN at line 12 removes it (`rm "
            "-rf shared/prisma`); run prisma generate before that, or copy "
            "packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "rm-parent-workspace-folder",
        "translator",
        (Replace(TRANSLATOR, TR_GEN, "RUN rm -rf /workspace/shared\n" + TR_GEN),),
        "breaking",
        (
            "services/translator/Dockerfile:13: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma, but the RUN at line 12 removes it (`rm "
            "-rf /workspace/shared`); run prisma generate before that, or copy "
            "packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "mv-schema-to-tmp",
        "gateway",
        (
            Replace(
                GATEWAY, GENERATE, "RUN mv packages/shared/prisma/schema.prisma /tmp/\n" + GENERATE
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 moves it away "
            "(`mv packages/shared/prisma/schema.prisma /tmp/`); run prisma generate before "
            "that, or copy packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "mv-prisma-folder-away",
        "gateway",
        (
            Replace(
                GATEWAY, GENERATE, "RUN mv packages/shared/prisma packages/shared/db\n" + GENERATE
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 moves it away "
            "(`mv packages/shared/prisma packages/shared/db`); run prisma generate before "
            "that, or copy packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "cp-other-file-over-schema",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN cp packages/shared/package.json packages/shared/prisma/schema.prisma\n"
                + GENERATE,
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, which comes from "
            "packages/shared/package.json, not packages/shared/prisma/schema.prisma; point "
            "--schema at the copy of packages/shared/prisma/schema.prisma"
        ),
        issue=1,
    ),
    Mutation(
        "echo-redirect-over-schema",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN echo 'datasource db {}' > packages/shared/prisma/schema.prisma\n" + GENERATE,
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 overwrites it "
            "(`echo 'datasource db {}' > packages/shared/prisma/schema.prisma`); run prisma "
            "generate before that, or copy packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "sed-in-place-on-schema",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN sed -i 's/mongodb/postgresql/' packages/shared/prisma/schema.prisma\n"
                + GENERATE,
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 overwrites it "
            "(`sed -i s/mongodb/postgresql/ packages/shared/prisma/schema.prisma`); run prisma "
            "generate before that, or copy packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "find-delete-prisma-files",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN find packages -name '*.prisma' -delete\n" + GENERATE),),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 removes it "
            "(`find packages -name '*.prisma' -delete`); run prisma generate before that, or "
            "copy packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "ln-sf-other-file-as-schema",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                "RUN ln -sf /workspace/requirements.txt shared/prisma/schema.prisma\n" + TR_GEN,
            ),
        ),
        "breaking",
        (
            "services/translator/Dockerfile:13: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma, which comes from "
            "services/translator/requirements.txt, not packages/shared/prisma/schema.prisma; "
            "point --schema at the copy of packages/shared/prisma/schema.prisma"
        ),
        issue=1,
    ),
    Mutation(
        "unfollowable-formatter-on-schema-folder",
        "gateway",
        (
            Replace(
                GATEWAY, GENERATE, "RUN npx prettier --write packages/shared/prisma\n" + GENERATE
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 runs `prettier "
            "--write packages/shared/prisma` on /app/packages/shared/prisma, which the gate "
            "cannot follow; run prisma generate before that, or copy "
            "packages/shared/prisma/schema.prisma again after it"
        ),
        issue=1,
    ),
    Mutation(
        "tar-extract-over-packages",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN tar -xzf /tmp/vendor.tgz -C packages\n" + GENERATE),),
        "breaking",
        (
            "services/gateway/Dockerfile:20: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma, but the RUN at line 19 runs `tar -xzf "
            "/tmp/vendor.tgz -C packages` on /app/packages, which the gate cannot follow; run "
            "prisma generate before that, or copy packages/shared/prisma/schema.prisma again "
            "after it"
        ),
        issue=1,
    ),
    Mutation(
        "curl-download-over-schema",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                "RUN curl -fsSL -o shared/prisma/schema.prisma https://example.com/schema.prisma\n"
                + TR_GEN,
            ),
        ),
        "breaking",
        (
            "services/translator/Dockerfile:13: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma, but the RUN at line 12 overwrites it "
            "(`curl -fsSL -o shared/prisma/schema.prisma https://example.com/schema.prisma`); "
            "run prisma generate before that, or copy packages/shared/prisma/schema.prisma "
            "again after it"
        ),
        issue=1,
    ),
    Mutation(
        "tar-archive-of-packages-read-only",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN tar -czf /tmp/packages.tgz packages\n" + GENERATE),),
        "equivalent",
        (
            "L20 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "rm-schema-after-copy-in-final-web",
        "web",
        (Replace(WEB, "EXPOSE 3100", "RUN rm -rf packages/shared/prisma\nEXPOSE 3100"),),
        "breaking",
        (
            "apps/web/Dockerfile:27: packages/shared/prisma/schema.prisma is copied to "
            "/app/packages/shared/prisma/schema.prisma in stage 'runner', but the RUN at line "
            "27 removes it (`rm -rf packages/shared/prisma`); the final image would not hold it"
        ),
        issue=1,
    ),
    Mutation(
        "rm-generated-client-folder-before-generate",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN rm -rf packages/shared/prisma/client\n" + GENERATE),),
        "equivalent",
        (
            "L20 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "rm-caches-unrelated",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN rm -rf /tmp/* /root/.cache packages/shared/node_modules\n" + GENERATE,
            ),
        ),
        "equivalent",
        (
            "L20 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "mv-schema-renamed-and-generate-follows",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN mv packages/shared/prisma/schema.prisma packages/shared/prisma/main.prisma\n"
                + GENERATE.replace("schema.prisma", "main.prisma"),
            ),
        ),
        "equivalent",
        (
            "L20 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/main.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "cp-schema-folder-and-generate-the-copy",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                (
                    "RUN cp -r shared/prisma /workspace/db && prisma generate "
                    "--schema=/workspace/db/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/db/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "find-delete-pyc-only",
        "translator",
        (Replace(TRANSLATOR, TR_GEN, "RUN find . -name '*.pyc' -delete\n" + TR_GEN),),
        "equivalent",
        (
            "L13 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "chown-whole-app",
        "gateway",
        (
            Replace(
                GATEWAY, GENERATE, "RUN chown -R 1000:1000 /app && chmod -R g+w /app\n" + GENERATE
            ),
        ),
        "equivalent",
        (
            "L20 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=1,
    ),
    Mutation(
        "exclude-prisma-folder",
        "gateway",
        (
            Replace(
                GATEWAY, GW_DEPS_COPY, "COPY --exclude=prisma packages/shared/ ./packages/shared/"
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /app/packages/shared/prisma/"
        ),
        issue=2,
    ),
    Mutation(
        "exclude-prisma-folder-with-slash",
        "gateway",
        (
            Replace(
                GATEWAY, GW_DEPS_COPY, "COPY --exclude=prisma/ packages/shared/ ./packages/shared/"
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /app/packages/shared/prisma/"
        ),
        issue=2,
    ),
    Mutation(
        "exclude-double-star-schema",
        "gateway",
        (
            Replace(
                GATEWAY,
                GW_DEPS_COPY,
                "COPY --exclude=**/schema.prisma packages/shared/ ./packages/shared/",
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /app/packages/shared/prisma/"
        ),
        issue=2,
    ),
    Mutation(
        "exclude-prisma-files",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_COPY,
                "COPY --exclude=*.prisma packages/shared/prisma ./shared/prisma/",
            ),
        ),
        "breaking",
        (
            "services/translator/Dockerfile:12: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /workspace/shared/prisma/"
        ),
        issue=2,
    ),
    Mutation(
        "exclude-prisma-folder-in-web-deps",
        "web",
        (
            Replace(
                WEB,
                "COPY packages/shared/ ./packages/shared/",
                "COPY --exclude=prisma packages/shared/ ./packages/shared/",
            ),
        ),
        "breaking",
        (
            "apps/web/Dockerfile:21: no COPY in the stages the final image depends on (base, "
            "deps, builder, runner) brings packages/shared/prisma/schema.prisma; add COPY "
            "packages/shared/prisma ./packages/shared/prisma/"
        ),
        issue=2,
    ),
    Mutation(
        "exclude-docs-and-modules",
        "gateway",
        (
            Replace(
                GATEWAY,
                GW_DEPS_COPY,
                "COPY --exclude=*.md --exclude=node_modules packages/shared/ ./packages/shared/",
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=2,
    ),
    Mutation(
        "exclude-stale-client",
        "gateway",
        (
            Replace(
                GATEWAY,
                GW_DEPS_COPY,
                "COPY --exclude=prisma/client packages/shared/ ./packages/shared/",
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=2,
    ),
    Mutation(
        "web-drop-builder-copy-from-deps",
        "web",
        (Replace(WEB, "COPY --from=deps /app/packages ./packages\n", ""),),
        "breaking",
        (
            "apps/web/Dockerfile:7: packages/shared/prisma/schema.prisma is copied only into "
            "stage 'deps', which the final stage 'runner' does not depend on; COPY it in one "
            "of: base, builder, runner"
        ),
        issue=3,
    ),
    Mutation(
        "web-final-takes-shared-from-deps",
        "web",
        (
            Replace(
                WEB,
                "COPY --from=builder /app/packages/shared ./packages/shared",
                "COPY --from=deps /app/packages/shared ./packages/shared",
            ),
        ),
        "breaking",
        (
            "apps/web/Dockerfile:26: the final stage 'runner' takes "
            "packages/shared/prisma/schema.prisma from stage 'deps', not through stage "
            "'builder' that builds the app (line 19); take it from 'builder' (COPY "
            "--from=builder) instead"
        ),
        issue=3,
    ),
    Mutation(
        "web-final-takes-shared-from-context",
        "web",
        (
            Replace(
                WEB,
                WEB_FROM_DEPS,
                "COPY --from=deps /app/packages/shared/package.json ./packages/shared/\n",
            ),
            Replace(WEB, WEB_FINAL_SHARED, "COPY packages/shared ./packages/shared"),
        ),
        "breaking",
        (
            "apps/web/Dockerfile:19: stage 'builder' builds the app (`next build`) without "
            "packages/shared/prisma/schema.prisma; COPY it into 'builder' before that line"
        ),
        issue=3,
    ),
    Mutation(
        "web-builder-copies-packages-after-build",
        "web",
        (
            Replace(WEB, WEB_FROM_DEPS, ""),
            Replace(WEB, WEB_APP_BUILD, WEB_APP_BUILD + WEB_FROM_DEPS),
        ),
        "breaking",
        (
            "apps/web/Dockerfile:18: stage 'builder' builds the app (`next build`) without "
            "packages/shared/prisma/schema.prisma; COPY it into 'builder' before that line"
        ),
        issue=3,
    ),
    Mutation(
        "web-final-drops-shared",
        "web",
        (Replace(WEB, "COPY --from=builder /app/packages/shared ./packages/shared\n", ""),),
        "breaking",
        (
            "apps/web/Dockerfile:21: packages/shared/prisma/schema.prisma reaches stage "
            "'builder' (/app/packages/shared/prisma/schema.prisma) but not the final stage "
            "'runner'; carry it through the stage that builds the app into the final stage "
            "(COPY --from=...)"
        ),
        issue=3,
    ),
    Mutation(
        "web-final-takes-whole-app",
        "web",
        (
            Replace(
                WEB,
                (
                    "COPY --from=builder /app/apps/web/dist ./dist\nCOPY --from=builder "
                    "/app/packages/shared ./packages/shared"
                ),
                "COPY --from=builder /app ./",
            ),
        ),
        "equivalent",
        (
            "L25 runner: COPY --from=builder /app -> /app/ "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)"
        ),
        issue=3,
    ),
    Mutation(
        "web-builder-copies-from-context",
        "web",
        (
            Replace(
                WEB, "COPY --from=deps /app/packages ./packages\n", "COPY packages/ ./packages/\n"
            ),
        ),
        "equivalent",
        (
            "L26 runner: COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)"
        ),
        issue=3,
    ),
    Mutation(
        "web-final-from-builder",
        "web",
        (Replace(WEB, "FROM base AS runner", "FROM builder AS runner"),),
        "equivalent",
        (
            "L26 runner: COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)"
        ),
        issue=3,
    ),
    Mutation(
        "web-json-form-copy",
        "web",
        (
            Replace(
                WEB,
                "COPY packages/shared/ ./packages/shared/",
                'COPY ["packages/shared/", "./packages/shared/"]',
            ),
        ),
        "equivalent",
        (
            "L26 runner: COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)"
        ),
        issue=3,
    ),
    Mutation(
        "web-shared-via-arg",
        "web",
        (
            Replace(
                WEB,
                "COPY packages/shared/ ./packages/shared/",
                "ARG SHARED=packages/shared\nCOPY ${SHARED}/ ./${SHARED}/",
            ),
        ),
        "equivalent",
        (
            "L27 runner: COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)"
        ),
        issue=3,
    ),
    Mutation(
        "gateway-final-copies-shared-from-context",
        "gateway",
        (Replace(GATEWAY, GW_FINAL_SHARED, "COPY packages/shared ./packages/shared"),),
        "breaking",
        (
            "services/gateway/Dockerfile:35: the final stage 'runner' takes "
            "/app/packages/shared/prisma from the build context (packages/shared/prisma), not "
            "from stage 'builder' where prisma generate runs (line 19); COPY --from=builder "
            "/app/packages/shared/prisma instead"
        ),
        issue=4,
    ),
    Mutation(
        "gateway-final-copies-shared-from-deps",
        "gateway",
        (
            Replace(
                GATEWAY, GW_FINAL_SHARED, "COPY --from=deps /app/packages/shared ./packages/shared"
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:35: the final stage 'runner' takes "
            "/app/packages/shared/prisma from stage 'deps', not from stage 'builder' where "
            "prisma generate runs (line 19); COPY --from=builder /app/packages/shared/prisma "
            "instead"
        ),
        issue=4,
    ),
    Mutation(
        "gateway-final-drops-shared-and-client",
        "gateway",
        (
            Replace(GATEWAY, GW_FINAL_SHARED + chr(10), ""),
            Replace(
                GATEWAY,
                "&& cp -r packages/shared/prisma/client packages/shared/prisma/schema.prisma",
                "&& cp -r packages/shared/prisma/schema.prisma",
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: the client npx prisma generate writes to "
            "/app/packages/shared/prisma/client (stage 'builder') does not reach the final "
            "stage 'runner'; COPY --from=builder /app/packages/shared/prisma into it"
        ),
        issue=4,
    ),
    Mutation(
        "gateway-client-removed-in-final",
        "gateway",
        (Replace(GATEWAY, "USER 1000", "RUN rm -rf packages/shared/prisma/client\nUSER 1000"),),
        "breaking",
        (
            "services/gateway/Dockerfile:19: the client npx prisma generate writes to "
            "/app/packages/shared/prisma/client does not reach the final image: the RUN at "
            "line 36 removes it (`rm -rf packages/shared/prisma/client`)"
        ),
        issue=4,
    ),
    Mutation(
        "gateway-final-from-builder",
        "gateway",
        (Replace(GATEWAY, "FROM base AS runner", "FROM builder AS runner"),),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=4,
    ),
    Mutation(
        "gateway-generate-in-own-stage",
        "gateway",
        (
            Replace(GATEWAY, GENERATE, "FROM builder AS gen\n" + GENERATE),
            Replace(
                GATEWAY, GW_FINAL_SHARED, "COPY --from=gen /app/packages/shared ./packages/shared"
            ),
        ),
        "equivalent",
        (
            "L20 gen: RUN npx prisma generate reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=4,
    ),
    Mutation(
        "translator-final-recopies-schema-folder",
        "translator",
        (
            Replace(
                TRANSLATOR,
                'COPY ["services/translator/src", "./src"]',
                TR_COPY + '\nCOPY ["services/translator/src", "./src"]',
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=4,
    ),
    Mutation(
        "if-else-on-package-manager",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    'RUN if [ "$PACKAGE_MANAGER" = bun ]; then bunx prisma generate '
                    "--generator client --schema=./packages/shared/prisma/schema.prisma; else "
                    "npx prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma; fi"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "case-on-package-manager",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    'RUN case "$PACKAGE_MANAGER" in bun) bunx prisma generate --generator '
                    "client --schema=./packages/shared/prisma/schema.prisma ;; *) npx prisma "
                    "generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma ;; esac"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "for-loop-over-generators",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    'RUN for g in client; do npx prisma generate --generator "$g" '
                    "--schema=./packages/shared/prisma/schema.prisma; done"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "subshell-cd-and-package-json-schema",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN (cd packages/shared && npx prisma generate --generator client)",
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "set-e-and-semicolons",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                (
                    "RUN set -eux; cd shared; prisma generate --schema=./prisma/schema.prisma; "
                    "echo generated"
                ),
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "install-and-generate-chain",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN bun install --frozen-lockfile && npx prisma generate --generator "
                    "client --schema=./packages/shared/prisma/schema.prisma && echo ok"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "sh-c-with-cd",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                (
                    "RUN sh -c 'cd /workspace/shared && prisma generate "
                    "--schema=prisma/schema.prisma'"
                ),
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=5,
    ),
    Mutation(
        "generate-only-in-a-comment",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN echo building # npx prisma generate "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:25: no RUN in the stages the final image depends on "
            "(base, deps, builder, runner) runs prisma generate (the schema is at "
            "/app/packages/shared/prisma/schema.prisma in stage 'deps'); add RUN npx prisma "
            "generate --schema=<that path>"
        ),
        issue=5,
    ),
    Mutation(
        "generate-only-echoed",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN echo 'npx prisma generate --schema=./packages/shared/prisma/schema.prisma'",
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:25: no RUN in the stages the final image depends on "
            "(base, deps, builder, runner) runs prisma generate (the schema is at "
            "/app/packages/shared/prisma/schema.prisma in stage 'deps'); add RUN npx prisma "
            "generate --schema=<that path>"
        ),
        issue=5,
    ),
    Mutation(
        "npx-package-option",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npx -p prisma@6.19.2 prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "bunx-versioned",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN bunx prisma@6 generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN bunx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "pnpm-dlx",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN pnpm dlx prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN pnpm dlx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "npm-exec-double-dash",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npm exec -- prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npm exec prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "yarn-binary",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN yarn prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN yarn prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "bun-x",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN bun x prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN bun x prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "npx-yes-versioned",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npx --yes prisma@6 generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "node-prisma-entry-point",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN node node_modules/prisma/build/index.js generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN prisma generate reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "python-m-prisma-generate",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                "RUN python3 -m prisma generate --schema=./shared/prisma/schema.prisma",
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "uv-run-prisma-generate",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                "RUN uv run --frozen prisma generate --schema=./shared/prisma/schema.prisma",
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN uv run prisma generate reads /workspace/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=6,
    ),
    Mutation(
        "npx-prisma-validate-only",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npx -p prisma@6.19.2 prisma validate "
                    "--schema=./packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:25: no RUN in the stages the final image depends on "
            "(base, deps, builder, runner) runs prisma generate (the schema is at "
            "/app/packages/shared/prisma/schema.prisma in stage 'deps'); add RUN npx prisma "
            "generate --schema=<that path>"
        ),
        issue=6,
    ),
    Mutation(
        "npx-prisma-migrate-only",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN npx prisma migrate deploy --schema=./packages/shared/prisma/schema.prisma",
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:25: no RUN in the stages the final image depends on "
            "(base, deps, builder, runner) runs prisma generate (the schema is at "
            "/app/packages/shared/prisma/schema.prisma in stage 'deps'); add RUN npx prisma "
            "generate --schema=<that path>"
        ),
        issue=6,
    ),
    Mutation(
        "schema-from-dollar-pwd-subst",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npx prisma generate --generator client "
                    "--schema=$(pwd)/packages/shared/prisma/schema.prisma"
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=7,
    ),
    Mutation(
        "schema-from-PWD",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npx prisma generate --generator client "
                    '--schema="$PWD/packages/shared/prisma/schema.prisma"'
                ),
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=7,
    ),
    Mutation(
        "schema-from-backtick-pwd-after-cd",
        "translator",
        (
            Replace(
                TRANSLATOR,
                TR_GEN,
                "RUN cd shared && prisma generate --schema=`pwd`/prisma/schema.prisma",
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=7,
    ),
    Mutation(
        "schema-from-pwd-wrong-folder",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                ("RUN npx prisma generate --generator client --schema=$(pwd)/prisma/schema.prisma"),
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate reads "
            "/app/prisma/schema.prisma but no COPY puts packages/shared/prisma/schema.prisma "
            "there; copy it with COPY packages/shared/prisma /app/prisma/"
        ),
        issue=7,
    ),
    Mutation(
        "schema-from-unknown-substitution",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                "RUN npx prisma generate --generator client --schema=$(cat /schema-path)",
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate: its --schema ($(...)) holds "
            "a value the gate cannot know; pass --schema a path"
        ),
        issue=7,
    ),
    Mutation(
        "npm-workspace-run-generate",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN npm --workspace=packages/shared run generate"),),
        "equivalent",
        (
            "L19 builder: RUN prisma generate via npm run generate: script in "
            "packages/shared/package.json reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=8,
    ),
    Mutation(
        "npm-run-generate-prefix",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN npm run generate --prefix packages/shared"),),
        "equivalent",
        (
            "L19 builder: RUN prisma generate via npm run generate: script in "
            "packages/shared/package.json reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=8,
    ),
    Mutation(
        "npm-w-short-option",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN npm -w packages/shared run generate"),),
        "equivalent",
        (
            "L19 builder: RUN prisma generate via npm run generate: script in "
            "packages/shared/package.json reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=8,
    ),
    Mutation(
        "pnpm-dir-run",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN pnpm --dir packages/shared run generate"),),
        "equivalent",
        (
            "L19 builder: RUN prisma generate via pnpm run generate: script in "
            "packages/shared/package.json reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=8,
    ),
    Mutation(
        "yarn-cwd-script",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN yarn --cwd packages/shared generate"),),
        "equivalent",
        (
            "L19 builder: RUN prisma generate via yarn generate: script in "
            "packages/shared/package.json reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=8,
    ),
    Mutation(
        "bun-run-in-package-folder",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN cd packages/shared && bun run generate"),),
        "equivalent",
        (
            "L19 builder: RUN prisma generate via bun run generate: script in "
            "packages/shared/package.json reads /app/packages/shared/prisma/schema.prisma "
            "(from packages/shared/prisma/schema.prisma)"
        ),
        issue=8,
    ),
    Mutation(
        "npm-workspace-without-that-script",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN npm --workspace=services/gateway run generate"),),
        "breaking",
        (
            "services/gateway/Dockerfile:25: no RUN in the stages the final image depends on "
            "(base, deps, builder, runner) runs prisma generate (the schema is at "
            "/app/packages/shared/prisma/schema.prisma in stage 'deps'); add RUN npx prisma "
            "generate --schema=<that path>"
        ),
        issue=8,
    ),
    Mutation(
        "npm-workspace-by-package-name",
        "gateway",
        (Replace(GATEWAY, GENERATE, "RUN npm -w @meeshy/shared run generate"),),
        "breaking",
        (
            "services/gateway/Dockerfile:25: no RUN in the stages the final image depends on "
            "(base, deps, builder, runner) runs prisma generate (the schema is at "
            "/app/packages/shared/prisma/schema.prisma in stage 'deps'); add RUN npx prisma "
            "generate --schema=<that path>; not followed: services/gateway/Dockerfile:19: `npm "
            "-w @meeshy/shared run generate`: npm -w @meeshy/shared (a workspace named by "
            "package name)"
        ),
        issue=8,
    ),
    Mutation(
        "ignore-folder-then-reinclude-schema",
        "gateway",
        (
            Write(
                ".dockerignore",
                "packages/shared/prisma/\n!packages/shared/prisma/schema.prisma\n",
                append=True,
            ),
        ),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-prisma-files-then-reinclude",
        "translator",
        (
            Write(
                ".dockerignore", "**/*.prisma\n!packages/shared/prisma/schema.prisma\n", append=True
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-packages-then-reinclude-shared",
        "web",
        (Write(".dockerignore", "packages/\n!packages/shared/\n", append=True),),
        "equivalent",
        (
            "L26 runner: COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/schema.prisma -> "
            "/app/packages/shared/prisma/schema.prisma)"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-quirk-earlier-reinclude-wins",
        "translator",
        (
            Write(
                ".dockerignore",
                "packages\n!packages/shared/prisma/schema.prisma\npackages/shared\n",
                append=True,
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-prisma-folder",
        "gateway",
        (Write(".dockerignore", "packages/shared/prisma\n", append=True),),
        "breaking",
        (
            ".dockerignore:14: pattern 'packages/shared/prisma' excludes "
            "packages/shared/prisma/schema.prisma from the build context; add "
            "'!packages/shared/prisma/schema.prisma' after it or narrow the pattern"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-reinclude-before-exclude",
        "translator",
        (
            Write(
                ".dockerignore",
                "!packages/shared/prisma/schema.prisma\npackages/shared/prisma/\n",
                append=True,
            ),
        ),
        "breaking",
        (
            ".dockerignore:15: pattern 'packages/shared/prisma/' excludes "
            "packages/shared/prisma/schema.prisma from the build context; add "
            "'!packages/shared/prisma/schema.prisma' after it or narrow the pattern"
        ),
        warning=(
            "services/translator/Dockerfile:11: COPY source packages/shared/prisma is "
            "excluded by .dockerignore:15 pattern 'packages/shared/prisma/'; the build "
            "will fail there"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-double-star-prisma",
        "web",
        (Write(".dockerignore", "**/prisma\n", append=True),),
        "breaking",
        (
            ".dockerignore:14: pattern '**/prisma' excludes "
            "packages/shared/prisma/schema.prisma from the build context; add "
            "'!packages/shared/prisma/schema.prisma' after it or narrow the pattern"
        ),
        issue=9,
    ),
    Mutation(
        "dockerfile-specific-ignore-wins",
        "gateway",
        (Write("services/gateway/Dockerfile.dockerignore", "**/prisma/\n", append=False),),
        "breaking",
        (
            "services/gateway/Dockerfile.dockerignore:1: pattern '**/prisma/' excludes "
            "packages/shared/prisma/schema.prisma from the build context; add "
            "'!packages/shared/prisma/schema.prisma' after it or narrow the pattern"
        ),
        warning=(
            "services/gateway/.dockerignore is not read by a build with context '.' "
            "(Docker reads services/gateway/Dockerfile.dockerignore); move its "
            "patterns there or into services/gateway/Dockerfile.dockerignore"
        ),
        issue=9,
    ),
    Mutation(
        "ignore-case-differs",
        "translator",
        (Write(".dockerignore", "Packages/Shared/\n", append=True),),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=9,
    ),
    Mutation(
        "schema-symlink-to-sibling-copied-folder",
        "web",
        (
            Write("packages/shared/prisma/v2.prisma", SCHEMA_TEXT),
            Symlink(SCHEMA, "v2.prisma"),
        ),
        "equivalent",
        (
            "L26 runner: COPY --from=builder /app/packages/shared -> /app/packages/shared "
            "(/app/packages/shared/prisma/v2.prisma -> /app/packages/shared/prisma/v2.prisma)"
        ),
        warning=(
            "packages/shared/prisma/schema.prisma is a symlink to v2.prisma "
            "(packages/shared/prisma/v2.prisma); its target reaches the image at "
            "/app/packages/shared/prisma/v2.prisma, so the image is built from that "
            "file"
        ),
        issue=10,
    ),
    Mutation(
        "schema-symlink-sibling-translator",
        "translator",
        (
            Write("packages/shared/prisma/v2.prisma", SCHEMA_TEXT),
            Symlink(SCHEMA, "v2.prisma"),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        warning=(
            "packages/shared/prisma/schema.prisma is a symlink to v2.prisma "
            "(packages/shared/prisma/v2.prisma); its target reaches the image at "
            "/workspace/shared/prisma/v2.prisma, so the image is built from that file"
        ),
        issue=10,
    ),
    Mutation(
        "schema-symlink-file-copied-directly",
        "translator",
        (
            Write("schemas/main.prisma", SCHEMA_TEXT),
            Symlink(SCHEMA, "../../../schemas/main.prisma"),
            Replace(
                TRANSLATOR, TR_COPY, "COPY packages/shared/prisma/schema.prisma ./shared/prisma/"
            ),
        ),
        "equivalent",
        (
            "L12 base: RUN prisma generate reads /workspace/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        warning=(
            "packages/shared/prisma/schema.prisma is a symlink to "
            "../../../schemas/main.prisma (schemas/main.prisma); its target reaches "
            "the image at /workspace/shared/prisma/schema.prisma, so the image is "
            "built from that file"
        ),
        issue=10,
    ),
    Mutation(
        "schema-symlink-outside-the-copied-folder",
        "translator",
        (
            Write("schemas/main.prisma", SCHEMA_TEXT),
            Symlink(SCHEMA, "../../../schemas/main.prisma"),
        ),
        "breaking",
        (
            "services/translator/Dockerfile:12: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma, a symlink "
            "(/workspace/shared/prisma/schema.prisma -> ../../../schemas/main.prisma) to "
            "/schemas/main.prisma, which nothing in the image provides; "
            "packages/shared/prisma/schema.prisma is a symlink to "
            "../../../schemas/main.prisma: copy the file it points to as well, or copy the "
            "file itself instead of the link"
        ),
        issue=10,
    ),
    Mutation(
        "schema-symlink-outside-the-context",
        "gateway",
        (
            Write("../outside.prisma", SCHEMA_TEXT),
            Symlink(SCHEMA, "../../../../outside.prisma"),
        ),
        "breaking",
        (
            "packages/shared/prisma/schema.prisma: a symlink to ../../../../outside.prisma, "
            "which is not in the build context '.'; a build cannot read it (BuildKit resolves "
            "symlinks inside the context): put the file itself there"
        ),
        issue=10,
    ),
    Mutation(
        "schema-symlink-dangling",
        "gateway",
        (Symlink(SCHEMA, "/nonexistent/meeshy/schema.prisma"),),
        "breaking",
        (
            "packages/shared/prisma/schema.prisma: a symlink whose target does not exist; "
            "point it at the schema"
        ),
        issue=10,
    ),
    Mutation(
        "schema-symlink-target-ignored",
        "web",
        (
            Write("schemas/main.prisma", SCHEMA_TEXT),
            Symlink(SCHEMA, "../../../schemas/main.prisma"),
            Write(".dockerignore", "schemas/\n", append=True),
        ),
        "breaking",
        (
            "packages/shared/prisma/schema.prisma: a symlink to ../../../schemas/main.prisma, "
            "which .dockerignore:14 pattern 'schemas/' leaves out of the build context; a "
            "build cannot read it (BuildKit resolves symlinks inside the context): put the "
            "file itself there"
        ),
        issue=10,
    ),
    Mutation(
        "problem-at-line-100",
        "gateway",
        (
            Replace(GATEWAY, "FROM deps AS builder", "#\n" * 81 + "FROM deps AS builder"),
            Replace(GATEWAY, GENERATE, GENERATE.replace("./packages", "./pkgs")),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:100: npx prisma generate reads "
            "/app/pkgs/shared/prisma/schema.prisma but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /app/pkgs/shared/prisma/"
        ),
        issue=11,
    ),
    Mutation(
        "generate-or-true",
        "gateway",
        (Replace(GATEWAY, GENERATE, GENERATE + " || true"),),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        warning=(
            "services/gateway/Dockerfile:19: a failing npx prisma generate would not "
            "fail the build: it is followed by `|| true`; let its failure fail the RUN"
        ),
        issue=12,
    ),
    Mutation(
        "generate-then-semicolon",
        "gateway",
        (Replace(GATEWAY, GENERATE, GENERATE + "; echo done"),),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        warning=(
            "services/gateway/Dockerfile:19: a failing npx prisma generate would not "
            "fail the build: `echo done` runs after it and the shell has no `set -e`; "
            "let its failure fail the RUN"
        ),
        issue=12,
    ),
    Mutation(
        "generate-piped-to-tee",
        "gateway",
        (Replace(GATEWAY, GENERATE, GENERATE + " | tee /tmp/prisma.log"),),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        warning=(
            "services/gateway/Dockerfile:19: a failing npx prisma generate would not "
            "fail the build: its output is piped to `tee /tmp/prisma.log` (no "
            "pipefail); let its failure fail the RUN"
        ),
        issue=12,
    ),
    Mutation(
        "generate-or-exit-1",
        "gateway",
        (Replace(GATEWAY, GENERATE, GENERATE + " || exit 1"),),
        "equivalent",
        (
            "L19 builder: RUN npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prisma (from "
            "packages/shared/prisma/schema.prisma)"
        ),
        issue=12,
    ),
    Mutation(
        "schema-flag-typo",
        "gateway",
        (
            Replace(
                GATEWAY,
                GENERATE,
                (
                    "RUN npx prisma generate --generator client "
                    "--schema=./packages/shared/prisma/schema.prima"
                ),
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: npx prisma generate reads "
            "/app/packages/shared/prisma/schema.prima but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /app/packages/shared/prisma/"
        ),
        issue=0,
    ),
    Mutation(
        "translator-variant-without-runtime-stage",
        "translator",
        (),
        "breaking",
        (
            "services/translator/Dockerfile:12: prisma generate runs in stage 'base', but the "
            "final stage 'runtime' does not depend on it; build the final stage FROM base or "
            "COPY --from=base the generated client"
        ),
        build_args={"TORCH_BACKEND": "tpu"},
        issue=0,
    ),
    Mutation(
        "generate-before-the-copy",
        "translator",
        (Replace(TRANSLATOR, TR_COPY + chr(10) + TR_GEN, TR_GEN + chr(10) + TR_COPY),),
        "breaking",
        (
            "services/translator/Dockerfile:11: prisma generate reads "
            "/workspace/shared/prisma/schema.prisma but no COPY puts "
            "packages/shared/prisma/schema.prisma there; copy it with COPY "
            "packages/shared/prisma /workspace/shared/prisma/"
        ),
        issue=0,
    ),
    Mutation(
        "generate-in-stage-the-image-skips",
        "gateway",
        (
            Replace(
                GATEWAY, "--from=builder /app/packages/shared", "--from=deps /app/packages/shared"
            ),
            Replace(
                GATEWAY,
                "--from=builder --chown=1000:1000 /app/dist",
                "--from=deps --chown=1000:1000 /app/packages",
            ),
        ),
        "breaking",
        (
            "services/gateway/Dockerfile:19: prisma generate runs in stage 'builder', but the "
            "final stage 'runner' does not depend on it; build the final stage FROM builder or "
            "COPY --from=builder the generated client"
        ),
        issue=0,
    ),
]


def _deciding(report_evidence: list[tuple[int, str, str]], policy: str) -> str:
    """The evidence line that decides a pass: the generate that reads the schema, or the copy
    that brings it into the final image."""
    if policy == "generate":
        line, stage, text = [
            e for e in report_evidence if e[2].startswith("RUN") and "prisma generate" in e[2]
        ][-1]
    else:
        line, stage, text = report_evidence[-1]
    return f"L{line} {stage}: {text}"


@pytest.mark.parametrize("mutation", [pytest.param(m, id=m.id) for m in MUTATIONS])
def test_mutation(tmp_path: Path, mutation: Mutation) -> None:
    root = meeshy_copy(tmp_path / "repo")
    apply(root, mutation)
    policy = POLICIES[mutation.service]
    report = check(
        GateInput(
            mutation.service,
            None,
            policy,
            root,
            DOCKERFILES[mutation.service],
            build_args=mutation.build_args,
        )
    )
    if mutation.verdict == "fail":
        assert (report.verdict, report.problems[0]) == ("fail", mutation.reason)
    else:
        assert (report.verdict, report.problems) == ("pass", ())
        evidence = [(e.line, e.stage, e.text) for e in report.evidence]
        assert _deciding(evidence, policy) == mutation.reason
    warnings = set(report.warnings) - {GATEWAY_IGNORE_WARNING}
    assert warnings == ({mutation.warning} if mutation.warning else set())


def test_the_unedited_meeshy_dockerfiles_pass(tmp_path: Path) -> None:
    root = meeshy_copy(tmp_path / "repo")
    for service, dockerfile in DOCKERFILES.items():
        report = check(GateInput(service, None, POLICIES[service], root, dockerfile))
        assert (service, report.verdict, report.problems) == (service, "pass", ())


def test_the_suite_covers_every_class_both_ways() -> None:
    kinds = Counter(m.kind for m in MUTATIONS)
    assert len(MUTATIONS) >= 60
    assert kinds["breaking"] >= 25
    assert kinds["equivalent"] >= 25
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    assert {m.issue for m in MUTATIONS} >= {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
    for item in (1, 2, 3, 4, 7, 8, 9, 10):
        assert {m.kind for m in MUTATIONS if m.issue == item} == {"breaking", "equivalent"}, item
