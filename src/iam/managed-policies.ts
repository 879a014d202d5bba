/**
 * AWS-managed policies that Berth provides built in, under their AWS ARNs, so that
 * `aws iam attach-user-policy --policy-arn arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly`
 * works as it does on AWS. Documents follow AWS's published versions, limited to the services
 * Berth implements.
 */
export interface ManagedPolicy {
  arn: string;
  name: string;
  id: string;
  description: string;
  document: string;
}

const doc = (statements: object[]): string => JSON.stringify({ Version: '2012-10-17', Statement: statements });

const readOnlyActions = [
  'ecr:GetAuthorizationToken',
  'ecr:BatchCheckLayerAvailability',
  'ecr:GetDownloadUrlForLayer',
  'ecr:GetRepositoryPolicy',
  'ecr:DescribeRepositories',
  'ecr:ListImages',
  'ecr:DescribeImages',
  'ecr:BatchGetImage',
  'ecr:GetLifecyclePolicy',
  'ecr:GetLifecyclePolicyPreview',
  'ecr:ListTagsForResource',
  'ecr:DescribeImageScanFindings',
  'ecr:ListImageReferrers',
];

export const managedPolicies: ManagedPolicy[] = [
  {
    arn: 'arn:aws:iam::aws:policy/AdministratorAccess',
    name: 'AdministratorAccess',
    id: 'ANPAIWMBCKSKIEE64ZLYK',
    description: 'Provides full access to every service and resource.',
    document: doc([{ Effect: 'Allow', Action: '*', Resource: '*' }]),
  },
  {
    arn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess',
    name: 'AmazonEC2ContainerRegistryFullAccess',
    id: 'ANPAIESRL7KD7IIVF6V4W',
    description: 'Provides administrative access to Amazon ECR resources.',
    document: doc([{ Effect: 'Allow', Action: 'ecr:*', Resource: '*' }]),
  },
  {
    arn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser',
    name: 'AmazonEC2ContainerRegistryPowerUser',
    id: 'ANPAJDNE5PIHROIBGGDDW',
    description: 'Provides full access to Amazon ECR repositories, but does not allow repository deletion or policy changes.',
    document: doc([
      {
        Effect: 'Allow',
        Action: [...readOnlyActions, 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage'],
        Resource: '*',
      },
    ]),
  },
  {
    arn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly',
    name: 'AmazonEC2ContainerRegistryReadOnly',
    id: 'ANPAIFYZPA37OOHVIH7KQ',
    description: 'Provides read-only access to Amazon ECR repositories.',
    document: doc([{ Effect: 'Allow', Action: readOnlyActions, Resource: '*' }]),
  },
  {
    arn: 'arn:aws:iam::aws:policy/IAMFullAccess',
    name: 'IAMFullAccess',
    id: 'ANPAI7XKCFMBPM3QQRRVQ',
    description: 'Provides full access to IAM.',
    document: doc([{ Effect: 'Allow', Action: 'iam:*', Resource: '*' }]),
  },
  {
    arn: 'arn:aws:iam::aws:policy/IAMReadOnlyAccess',
    name: 'IAMReadOnlyAccess',
    id: 'ANPAJKSO7NDY4T57MWDSQ',
    description: 'Provides read-only access to IAM.',
    document: doc([{ Effect: 'Allow', Action: ['iam:Get*', 'iam:List*'], Resource: '*' }]),
  },
];

export const managedPolicyByArn = new Map(managedPolicies.map((p) => [p.arn, p]));
