# Study generain: GeneRAIN on ARCHS4-schema bulk RNA-seq (docs/models/generain.md). An ARCHS4 file
# (simulated, built from count tables, or downloaded) -> sample QC, series split, Binning-By-Gene
# boundaries and the binned memmap -> GPT / BERT-genes / BERT-expression per mode and seed ->
# GeneRAIN-vec (TSV + word2vec) -> gene-attribute benchmark beside random, SVD and co-expression
# baselines -> figures. Helpers: rules/helpers/generain.smk.


include: "helpers/generain.smk"


# ------------------------------------------------------------------ ARCHS4 file
rule simulate_archs4:
    output:
        archs4="results/{dataset}/data/archs4.h5",
        attributes="results/{dataset}/data/gene_attributes.tsv",
    log:
        "logs/{dataset}/simulate_archs4.log",
    benchmark:
        "benchmarks/{dataset}/simulate_archs4.tsv"
    wildcard_constraints:
        dataset=SIMULATED_ARCHS4,
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        simulate=lambda wildcards: DATASETS[wildcards.dataset]["simulate"],
        seed=config["seed"],
    script:
        "../workflow_scripts/generain/simulate_archs4.py"


rule archs4_from_tables:
    input:
        tables=lambda wildcards: list(archs4_tables(wildcards).values()),
        labels=archs4_labels,
    output:
        archs4="results/{dataset}/data/archs4.h5",
    log:
        "logs/{dataset}/archs4_from_tables.log",
    benchmark:
        "benchmarks/{dataset}/archs4_from_tables.tsv"
    wildcard_constraints:
        dataset=TABLE_ARCHS4,
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        series=lambda wildcards: list(archs4_tables(wildcards)),
        label_sample_column=lambda wildcards: DATASETS[wildcards.dataset][
            "from_tables"
        ]["label_sample_column"],
    script:
        "../workflow_scripts/generain/archs4_from_tables.py"


# ------------------------------------------------------------------ QC, split, Binning-By-Gene
# One streamed pass per step inside deepexpr.data.archs4.prepare_binned: QC table, split labels,
# boundaries (corrected) stored in the directory, then the uint16 memmap written block by block.
rule bin_archs4:
    input:
        archs4=archs4_file,
    output:
        binned=directory("results/{dataset}/generain/{mode}/binned"),
    log:
        "logs/{dataset}/generain/bin_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/generain/bin_{mode}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        binning=binning_settings,
        qc=lambda wildcards: generain_block(wildcards.dataset)["qc"],
        gene_biotypes=lambda wildcards: generain_block(wildcards.dataset)[
            "gene_biotypes"
        ],
        max_samples=lambda wildcards: generain_block(wildcards.dataset)["max_samples"],
        seed=config["seed"],
    script:
        "../workflow_scripts/generain/bin_archs4.py"


# ------------------------------------------------------------------ models
rule train_generain:
    input:
        binned="results/{dataset}/generain/{mode}/binned",
    output:
        model="results/{dataset}/models/generain/{mode}/{variant}_seed{seed}/model.pt",
        history="results/{dataset}/models/generain/{mode}/{variant}_seed{seed}/history.tsv",
        embedding="results/{dataset}/models/generain/{mode}/{variant}_seed{seed}/embedding.tsv",
        word2vec="results/{dataset}/models/generain/{mode}/{variant}_seed{seed}/GeneRAIN-vec.txt.gz",
    log:
        "logs/{dataset}/train_generain/{mode}_{variant}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_generain/{mode}_{variant}_seed{seed}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=generain_settings,
        checkpoint_every=lambda wildcards: generain_block(wildcards.dataset)[
            "checkpoint_every"
        ],
        # Kept outside the outputs so a killed run resumes from here instead of starting over.
        checkpoint_dir=lambda wildcards: f"results/{wildcards.dataset}/models/generain/{wildcards.mode}/{wildcards.variant}_seed{wildcards.seed}/checkpoints",
        device=config["device"],
    script:
        "../workflow_scripts/generain/train_generain.py"


# ------------------------------------------------------------------ gene-attribute benchmark
rule generain_attributes:
    input:
        unpack(attribute_sources),
        embeddings=lambda wildcards: list(generain_embeddings(wildcards).values()),
        binned="results/{dataset}/generain/{mode}/binned",
    output:
        scores="results/{dataset}/generain/{mode}/attribute_scores.tsv",
        summary=report(
            "results/{dataset}/generain/{mode}/attribute_summary.tsv",
            caption=f"{REPORT_CAPTIONS}/generain_summary.rst",
            category="GeneRAIN",
            subcategory="{dataset}",
        ),
        comparisons="results/{dataset}/generain/{mode}/attribute_comparisons.tsv",
        gene_sets="results/{dataset}/generain/{mode}/attributes.gmt",
        baselines=directory("results/{dataset}/generain/{mode}/baselines"),
        neighbours=report(
            "results/{dataset}/generain/{mode}/nearest_neighbours.tsv",
            caption=f"{REPORT_CAPTIONS}/generain_neighbours.rst",
            category="GeneRAIN",
            subcategory="{dataset}",
        ),
    log:
        "logs/{dataset}/generain/attributes_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/generain/attributes_{mode}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        methods=lambda wildcards: list(generain_embeddings(wildcards)),
        attributes=lambda wildcards: DATASETS[wildcards.dataset]["attributes"],
        gene_lists=lambda wildcards: DATASETS[wildcards.dataset]["gene_lists"],
        seed=config["seed"],
    script:
        "../workflow_scripts/generain/attributes.py"


# ------------------------------------------------------------------ figures
rule figure_generain_loss:
    input:
        histories=lambda wildcards: list(generain_histories(wildcards).values()),
    output:
        report(
            "results/{dataset}/generain/{mode}/figures/loss.png",
            caption=f"{REPORT_CAPTIONS}/generain_loss.rst",
            category="GeneRAIN",
            subcategory="{dataset}",
        ),
    log:
        "logs/{dataset}/figures/generain_loss_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/figures/generain_loss_{mode}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        variants=lambda wildcards: list(generain_histories(wildcards)),
    script:
        "../workflow_scripts/generain/figure_loss.py"


rule figure_generain_binning:
    input:
        archs4=archs4_file,
        binned="results/{dataset}/generain/{mode}/binned",
    output:
        figure=report(
            "results/{dataset}/generain/{mode}/figures/binning.png",
            caption=f"{REPORT_CAPTIONS}/generain_binning.rst",
            category="GeneRAIN",
            subcategory="{dataset}",
        ),
        agreement="results/{dataset}/generain/{mode}/binning_agreement.tsv",
    log:
        "logs/{dataset}/figures/generain_binning_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/figures/generain_binning_{mode}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    localrule: True
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../workflow_scripts/generain/figure_binning.py"


rule figure_generain_auc:
    input:
        scores="results/{dataset}/generain/{mode}/attribute_scores.tsv",
    output:
        report(
            "results/{dataset}/generain/{mode}/figures/auc.png",
            caption=f"{REPORT_CAPTIONS}/generain_auc.rst",
            category="GeneRAIN",
            subcategory="{dataset}",
        ),
    log:
        "logs/{dataset}/figures/generain_auc_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/figures/generain_auc_{mode}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/generain/figure_auc.py"


rule figure_generain_umap:
    input:
        embeddings=lambda wildcards: list(generain_embeddings(wildcards).values()),
        gene_sets="results/{dataset}/generain/{mode}/attributes.gmt",
    output:
        report(
            "results/{dataset}/generain/{mode}/figures/umap.png",
            caption=f"{REPORT_CAPTIONS}/generain_umap.rst",
            category="GeneRAIN",
            subcategory="{dataset}",
        ),
    log:
        "logs/{dataset}/figures/generain_umap_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/figures/generain_umap_{mode}.tsv"
    wildcard_constraints:
        dataset=ARCHS4,
    localrule: True
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        methods=lambda wildcards: list(generain_embeddings(wildcards)),
        seed=config["seed"],
    script:
        "../workflow_scripts/generain/figure_umap.py"
